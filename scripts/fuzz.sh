#!/usr/bin/env bash
# Runs each fuzz target briefly (FUZZTIME, default 10s each): the
# notification decoder, the Idempotency-Key parser and the HTTP API's POST
# handler. Plain `go test` runs their seed corpora (testdata/fuzz/<Fuzz…>/);
# a crash found here is written there, so it becomes a seed once fixed.
# One fuzzing worker each (-parallel 1): the handler's target starts a real
# Temporal server in every worker process.
set -euo pipefail
cd "$(dirname "$0")/.."
# The handler's target starts redis-server, as the tests do.
. scripts/deps.sh
fuzztime=${FUZZTIME:-10s}
targets=(
  "FuzzDecodeNotification ."
  "FuzzIdempotencyKey ./httpapi"
  "FuzzPostNotification ./httpapi"
)
for t in "${targets[@]}"; do
  read -r name pkg <<<"$t"
  echo "fuzz: $name ($pkg) for $fuzztime"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -parallel 1 "$pkg"
done
