//go:build linux

package chaos_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/chaos"
)

// TestSmallChaosRun is the chaos harness's small configuration: a few
// hundred notifications, each started three times at once, through two
// worker processes that are SIGKILLed about once a second, a Redis restart,
// a Temporal server restart, and a receiver that answers 500, 429, late or
// with a reset. The large run is `onceflow chaos` (see docs/chaos.md).
func TestSmallChaosRun(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos run takes a minute or two; -short skips it")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "onceflow")
	build := exec.Command("go", "build", "-o", bin, "github.com/onceflow/onceflow/cmd/onceflow")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build the onceflow binary: %s", out)

	rep, err := chaos.Run(context.Background(), chaos.Config{
		Binary: bin, Dir: dir, Notifications: 200, Starts: 3, Workers: 2,
		KillEvery: time.Second, RedisRestarts: 1, TemporalRestarts: 1,
		Receiver: chaos.Faults{ServerError: 0.05, TooMany: 0.03, Slow: 0.03, SlowBy: 5 * time.Second, Reset: 0.03},
		SendRate: 30, Seed: 7, Timeout: 10 * time.Minute,
	})
	var report strings.Builder
	rep.Write(&report)
	t.Log("\n" + report.String())
	require.NoError(t, err)
	assert.True(t, rep.OK(), "invariants failed; the report above says which")
	assert.Equal(t, 200, rep.Accepted)
	for _, fault := range []string{"worker SIGKILL", "redis restart", "temporal restart", "receiver 500", "receiver slow"} {
		assert.Positive(t, rep.Faults[fault], "fault %q was injected", fault)
	}
}
