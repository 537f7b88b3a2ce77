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
#
# Each target runs a count of inputs, not a time: with a duration, Go's
# fuzzing coordinator (before go1.27, golang/go#75804) can fail a clean run
# with "context deadline exceeded" when the deadline fires while a worker is
# busy, as it did here under load; a count has no deadline to race. The
# counts take about 10s each on this 2-core machine. FUZZTIME (a duration
# or a count, e.g. 30s or 50000x) overrides them all.
targets=(
  "FuzzDecodeNotification . 20000x"
  "FuzzIdempotencyKey ./httpapi 5000x"
  "FuzzPostNotification ./httpapi 300x"
)
for t in "${targets[@]}"; do
  read -r name pkg count <<<"$t"
  fuzztime=${FUZZTIME:-$count}
  echo "fuzz: $name ($pkg) for $fuzztime"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -parallel 1 "$pkg"
done
