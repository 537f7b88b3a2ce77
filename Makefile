# Onceflow's tasks, as the Temporal Go samples keep them.
.PHONY: test test-short test-race lint fuzz bench build image record-histories

# The whole suite, installing redis-server and chromium first if missing
# (the README's test command).
test:
	bash scripts/test.sh

# The suite under the race detector, as CI runs it after `make test`.
test-race:
	bash scripts/test.sh -race

# The quick loop: skips the chaos run, the Web UI in Chromium and the long
# end-to-end runs.
test-short:
	bash scripts/test.sh -short

# gofmt, go vet, staticcheck, workflowcheck and errcheck (pinned, run with
# go run).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go vet ./...
	bash scripts/lint.sh

# Each fuzz target for a fixed count of inputs (FUZZTIME overrides, e.g.
# 30s): the notification decoder, the Idempotency-Key parser and the API's
# POST handler.
fuzz:
	bash scripts/fuzz.sh

# Records every workflow history the replay tests in workflows/ read: each
# package whose tests call testenv.RecordHistory, run with
# ONCEFLOW_RECORD_HISTORIES set to HISTORIES (see e2e/doc.go and
# docs/workflow-changes.md). Give a scratch directory and copy in what is new:
# make record-histories HISTORIES=$(mktemp -d)
HISTORIES ?= workflows/testdata
record-histories:
	ONCEFLOW_RECORD_HISTORIES=$(abspath $(HISTORIES)) go test -count=1 \
		$$(git grep -l 'testenv.RecordHistory(' -- '*_test.go' | xargs -n1 dirname | sort -u | sed 's|^|./|')

# The benchmarks behind docs/benchmarks.md (each section there gives the
# exact command and -benchtime used for its figures).
bench:
	go test -run '^$$' -bench . -benchtime 3s ./dedup
	go test -run '^$$' -bench 'Throughput|Latency' -benchtime 300x -timeout 30m ./internal/devstack

# The binaries: onceflow (with the dev stack) and the chaos harness.
build:
	go build -o bin/onceflow ./cmd/onceflow
	go build -o bin/onceflow-chaos ./cmd/onceflow-chaos

# The production image: no dev stack, no chaos harness.
image:
	docker build -t onceflow .
