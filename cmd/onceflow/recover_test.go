package main

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
)

func TestRecoverResendsFailedDeliveriesOnce(t *testing.T) {
	env := cliEnv(t)
	var fixed atomic.Bool
	rcv := testenv.NewReceiver(t, testenv.Dedup(), testenv.RefuseUntil(&fixed, http.StatusBadRequest))
	ctx := context.Background()
	r := run(ctx, env, "send", "--key", "invoice-7", "--channel", "webhook", "--to", rcv.URL+"/hook", "--body", "Invoice 7", "--wait")
	require.Equal(t, exitFailure, r.code, r.stderr)

	fixed.Store(true)
	require.Eventually(t, func() bool {
		r = run(ctx, env, "recover", "--since", "10m")
		require.Equal(t, exitOK, r.code, r.stderr)
		return strings.Contains(r.stdout, "1 re-sent")
	}, time.Minute, 200*time.Millisecond)
	assert.Regexp(t, `invoice-7\s+webhook\s+\S+\s+re-sent\s+as invoice-7\.recover`, r.stdout)
	newID := onceflow.Delivery{Channel: onceflow.Webhook, To: rcv.URL + "/hook"}.ID("invoice-7.recover")
	require.Eventually(t, func() bool { return rcv.Applied(newID) == 1 }, time.Minute, 100*time.Millisecond)
	r = run(ctx, env, "status", "invoice-7.recover")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "delivered")
	before := len(rcv.Headers())

	r = run(ctx, env, "recover", "--since", time.Now().Add(-10*time.Minute).UTC().Format(time.RFC3339), "--channel", "webhook", "--status", "failed")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "0 re-sent, 1 skipped")
	assert.Contains(t, r.stdout, "already re-sent")
	assert.Equal(t, before, len(rcv.Headers()), "the second recover sent nothing")
}

// Bad flags are refused before anything is reached.
func TestRecoverBadFlagsNameTheFlag(t *testing.T) {
	env := mapEnv{"TEMPORAL_ADDRESS": "127.0.0.1:1"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"recover"}, "--since is required"},
		{[]string{"recover", "--since", "yesterday"}, `--since "yesterday"`},
		{[]string{"recover", "--since", "-2h"}, "--since"},
		{[]string{"recover", "--since", "2h", "--status", "ambiguous"}, "--status"},
		{[]string{"recover", "--since", "2h", "--channel", "pigeon"}, "--channel"},
	} {
		r := run(context.Background(), env, c.args...)
		assert.Equal(t, exitInput, r.code, "%v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.want, "%v", c.args)
	}
}
