#!/usr/bin/env bash
# make lint: staticcheck and Temporal's workflowcheck, run through `go run`
# at pinned versions so nothing needs installing by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

# staticcheck 2026.1 (v0.7.0) is the release that knows Go 1.26.
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.7.0
# workflowcheck finds non-deterministic calls reachable from workflows.
WORKFLOWCHECK=go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0

go run "$STATICCHECK" ./...
go run "$WORKFLOWCHECK" ./...
