//go:build !race

package devstack_test

// raceDetector: see race_on_test.go.
const raceDetector = false
