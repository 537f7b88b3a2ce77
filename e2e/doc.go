// Package e2e holds the end-to-end suite for every channel: a real Temporal
// server (temporaltest), a real redis-server, and local servers speaking
// SMTP and the Twilio, Slack and FCM APIs, with a worker and the Go client
// in between. It has no code of its own, only tests:
//
//	go test -count=1 ./e2e
//
// The suite, like the other end-to-end tests, records the workflow
// histories that workflows/ replays (workflows/testdata). After an
// intended, versioned change of a workflow, record every history with one
// command, into a scratch directory, and copy in what is new:
//
//	make record-histories HISTORIES=$(mktemp -d)
//
// It runs each package whose tests call testenv.RecordHistory with
// ONCEFLOW_RECORD_HISTORIES set to HISTORIES (workflows/testdata when it
// is not given); docs/workflow-changes.md says which changes need new
// histories.
package e2e
