//go:build linux

package chaos_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/chaos"
)

// TestSmallChaosRun is the chaos harness's small configuration: a few
// hundred notifications over every channel, each started three times at
// once, through two worker processes that are SIGKILLed about every 0.7 s
// until every workflow has closed, a Redis restart and a Redis SIGKILL, a
// Temporal server restart and SIGKILL, and far ends that answer 500, 5xx
// after applying, 429, late or with a reset (an SMTP relay: 421, 451, slow
// DATA, a drop after taking the message). Two webhook broadcasts of 100
// recipients each, in chunks of 25, go through the same faults. The large
// run is onceflow-chaos (see docs/chaos.md).
//
// The seed comes from ONCEFLOW_CHAOS_SEED (.ci/run draws one and prints
// it), 7 without it; the report, logged on failure, names it too, so that
// a failing run can be replayed with the same faults.
func TestSmallChaosRun(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos run takes a minute or two; -short skips it")
	}
	seed := uint64(7)
	if s := os.Getenv("ONCEFLOW_CHAOS_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "ONCEFLOW_CHAOS_SEED=%q is not a seed (a whole number)", s)
	}
	t.Logf("chaos seed %d (replay: ONCEFLOW_CHAOS_SEED=%d go test -run TestSmallChaosRun ./internal/chaos)", seed, seed)
	dir := t.TempDir()
	rep, err := chaos.Run(context.Background(), chaos.Config{
		Binary: buildOnceflow(t, dir), Dir: dir, Notifications: 300, Starts: 3, Workers: 2,
		KillEvery: 700 * time.Millisecond, RedisRestarts: 1, RedisKills: 1, TemporalRestarts: 1, TemporalKills: 1,
		Receiver:   chaos.Faults{ServerError: 0.05, AppliedError: 0.03, TooMany: 0.03, Slow: 0.04, SlowBy: 5 * time.Second, Reset: 0.03},
		Broadcasts: 2, BroadcastRecipients: 100, BroadcastChunk: 25,
		SendRate: 30, Seed: seed, Timeout: 4 * time.Minute,
	})
	assertHeld(t, rep, err, 300)
	for ch, c := range rep.Channels {
		assert.Positive(t, c.Notifications, "channel %s had notifications", ch)
		assert.Zero(t, c.Lost, "channel %s lost none", ch)
	}

	// The faults happened and were felt.
	for _, fault := range []string{"worker SIGKILL", "redis restart", "redis SIGKILL", "temporal restart", "temporal SIGKILL",
		"receiver 500", "receiver 5xx after apply", "receiver reset", "receiver slow", "smtp 451"} {
		assert.Positive(t, rep.Faults[fault], "fault %q was injected", fault)
	}
	assert.Positive(t, rep.RawResends, "far ends took re-sends")
	assert.Positive(t, rep.KillsHitLiveLease, "worker kills interrupted deliveries with live leases")
	assert.Positive(t, rep.Ambiguous, "deliveries were reported ambiguous")
	assert.Positive(t, rep.Lookups, "the Twilio and Slack fakes were asked")
	assert.Positive(t, rep.LookupFound+rep.LookupAbsent, "ambiguous SMS and chat deliveries were settled by asking the provider")

	// Every broadcast recipient took effect once or was named ambiguous,
	// under the same faults.
	b := rep.Broadcasts
	assert.Equal(t, 2, b.Accepted, "broadcasts accepted")
	assert.Equal(t, 200, b.Recipients)
	assert.Empty(t, b.Lost, "broadcast recipients lost")
	assert.Empty(t, b.SilentDuplicates, "broadcast recipients that took effect twice unnamed")
	assert.Empty(t, b.Unaccounted, "broadcast re-sends neither named nor confirmed by the receiver's log")
	assert.Empty(t, b.Inconsistent, "broadcast statuses that contradict themselves")
	assert.Empty(t, b.FailedList, "broadcast recipients failed")
	assert.Empty(t, b.Invalid, "broadcast webhooks that did not check out")
	assert.LessOrEqual(t, len(b.Unjustified), b.UnjustifiedBound, "broadcast ambiguity without evidence stayed within its bound")
	assert.Equal(t, 200, b.Delivered+b.Suppressed+b.Ambiguous, "every recipient settled")
	for _, name := range []string{"broadcast", "broadcast-raw"} {
		require.Contains(t, b.Receivers, name)
		assert.Positive(t, b.Receivers[name].Notifications, "recipients sent to %s", name)
		assert.NotEmpty(t, b.Receivers[name].Faults, "faults injected at %s", name)
	}
	assert.Positive(t, b.Resends, "the broadcasts' receivers took re-sends")
}

// buildOnceflow builds the onceflow binary into dir and returns its path.
func buildOnceflow(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "onceflow")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/onceflow/onceflow/cmd/onceflow").CombinedOutput()
	require.NoError(t, err, "build the onceflow binary: %s", out)
	return bin
}

// assertHeld logs the report of a run of n notifications and asserts that
// the run went through and every invariant held.
func assertHeld(t *testing.T, rep chaos.Report, err error, n int) {
	t.Helper()
	var report strings.Builder
	rep.Write(&report)
	t.Log("\n" + report.String())
	require.NoError(t, err)
	assert.False(t, rep.TimedOut, "the run timed out")
	assert.Equal(t, n, rep.Accepted)
	assert.Empty(t, rep.Lost, "lost")
	assert.Empty(t, rep.Failed, "failed")
	assert.Empty(t, rep.Unaccounted, "re-sends neither reported nor confirmed by the receiver's log")
	assert.Empty(t, rep.Invalid, "requests that did not check out")
	assert.Empty(t, rep.HarnessErrors, "faults that did not take")
	assert.LessOrEqual(t, len(rep.Unjustified), rep.UnjustifiedBound, "ambiguity without evidence stayed within its bound")
	assert.Empty(t, rep.SilentDuplicates, "silent duplicates")
	assert.Empty(t, rep.LookupWrong, "lookup settlements the fakes' records contradict")
	assert.True(t, rep.OK(), "every invariant held")
}
