#!/usr/bin/env bash
# make lint: staticcheck, Temporal's workflowcheck and errcheck, run through
# `go run` at pinned versions so nothing needs installing by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

# staticcheck 2026.1 (v0.7.0) is the release that knows Go 1.26.
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.7.0
# workflowcheck finds non-deterministic calls reachable from workflows.
WORKFLOWCHECK=go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
# errcheck finds errors dropped without a word, as samples-go runs it; v1.30.0
# is the release built for Go 1.26. Its default exclusions (fmt's printing,
# bytes.Buffer and strings.Builder writes, hash writes, ...) plus
# scripts/errcheck-excludes.txt (terminal and report output, Fprintf into a
# MAC; the file says why); any other error ignored on purpose is assigned to
# _, with a comment saying why where that is not plain.
ERRCHECK=github.com/kisielk/errcheck@v1.30.0

go run "$STATICCHECK" ./...
go run "$WORKFLOWCHECK" ./...
go run "$ERRCHECK" -exclude scripts/errcheck-excludes.txt ./...
