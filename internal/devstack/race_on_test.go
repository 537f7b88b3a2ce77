//go:build race

package devstack_test

// raceDetector says the tests run under -race, which slows the embedded
// Temporal server several times over: tests that measure a rate the
// server must keep up with only check what does not depend on its speed.
const raceDetector = true
