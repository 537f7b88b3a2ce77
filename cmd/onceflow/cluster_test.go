package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
)

// The whole CLI on a Redis Cluster that requires a password: the worker
// starts on it (its durability check asks every primary), a notification
// is delivered once and suppressed when sent again, a broadcast keeps its
// list and its recipients' records there, ping checks every primary, and
// a wrong password is reported without the password.
func TestCommandsOnARedisClusterWithAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal and a 6-node Redis Cluster")
	}
	cluster, err := testenv.StartCluster(t.TempDir(), "cluster-s3cret")
	require.NoError(t, err)
	t.Cleanup(cluster.Cleanup)
	env := cliEnvWith(t, mapEnv{"REDIS_URL": cluster.URL(), "ONCEFLOW_REDIS_WAIT_REPLICAS": "1"})
	rcv := testenv.NewReceiver(t)
	ctx := context.Background()

	send := func(body string, more ...string) result {
		return run(ctx, env, append([]string{"send", "--key", "order-9-shipped", "--channel", "webhook", "--to", rcv.URL + "/hook", "--body", body}, more...)...)
	}
	r := send("On its way", "--wait")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "delivered")

	// Once the workflow is gone, the ledger on the cluster still knows the
	// key: another payload is refused, the same one suppressed.
	tc, err := client.Dial(client.Options{HostPort: env["TEMPORAL_ADDRESS"], Namespace: env["TEMPORAL_NAMESPACE"]})
	require.NoError(t, err)
	defer tc.Close()
	teststack.DeleteWorkflow(t, tc, env["TEMPORAL_NAMESPACE"], "notification/order-9-shipped")
	r = send("Cancelled")
	assert.Equal(t, exitInput, r.code, r.stderr)
	assert.Contains(t, r.stderr, "different payload")
	r = send("On its way", "--wait")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "suppressed")
	assert.Len(t, rcv.Headers(), 1, "sent once in all")

	path, b := broadcastFile(t, "cluster-news", rcv.URL, 30, "News")
	r = run(ctx, env, "broadcast", "--file", path, "--wait")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "30 of 30 settled: 30 delivered")
	for _, rc := range b.Recipients {
		assert.Equal(t, 1, rcv.Raw(onceflow.RecipientDeliveryID(b.Key, rc.ID)), rc.ID)
	}

	r = run(ctx, env, "ping")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "temporal ok, redis ok")

	wrong := strings.Replace(cluster.URL(), "cluster-s3cret", "not-it-s3cret", 1)
	r = run(ctx, env.with("REDIS_URL", wrong), "ping")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "REDIS_URL")
	assert.Contains(t, r.stderr, "redis+cluster://:xxxxx@127.0.0.1:")
	assert.NotContains(t, r.stderr, "s3cret")
}
