#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is
# missing (as root, with apt), then runs the whole suite. Arguments are
# passed to `go test` (e.g. -short, -run TestX).
#
# The tests start their own redis-server processes on free loopback ports
# and open the Temporal Web UI in headless Chromium, so both must be on the
# PATH; no system service needs to run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "scripts/test.sh: the tests need ${need[*]}; install them (Debian: sudo apt-get install -y ${need[*]}) and run this again" >&2
    exit 1
  fi
fi

exec go test -count=1 -timeout 45m "$@" ./...
