#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is
# missing (as root, with apt), then runs the whole suite. Arguments are
# passed to `go test` (e.g. -short, -run TestX).
# (scripts/deps.sh says what and why).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/deps.sh

exec go test -count=1 -timeout 45m "$@" ./...
