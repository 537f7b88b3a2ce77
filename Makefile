# Onceflow's tasks, as the Temporal Go samples keep them.
.PHONY: test test-short test-race lint fuzz bench build image

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

# gofmt, go vet, staticcheck and workflowcheck (pinned, run with go run).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go vet ./...
	bash scripts/lint.sh

# Each fuzz target for a fixed count of inputs (FUZZTIME overrides, e.g.
# 30s): the notification decoder, the Idempotency-Key parser and the API's
# POST handler.
fuzz:
	bash scripts/fuzz.sh

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
