package devstack_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/api/adminservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/devstack"
	"github.com/onceflow/onceflow/internal/pgproc"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/workflows"
)

func startPostgres(t testing.TB) *pgproc.Server {
	pg, err := pgproc.Start()
	require.NoError(t, err, "PostgreSQL is installed by scripts/deps.sh")
	t.Cleanup(pg.Stop)
	return pg
}

// shardOf asks the history service which shard holds a workflow.
func shardOf(t *testing.T, s *devstack.Stack, workflowID string) string {
	conn, err := grpc.NewClient(s.TemporalAddress, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	resp, err := adminservice.NewAdminServiceClient(conn).DescribeMutableState(context.Background(), &adminservice.DescribeMutableStateRequest{
		Namespace: devstack.Namespace, Execution: &commonpb.WorkflowExecution{WorkflowId: workflowID},
	})
	require.NoError(t, err)
	return resp.GetShardId()
}

func TestDevStackOnPostgresWithFourShards(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and the dev stack twice; -short skips it")
	}
	pg := startPostgres(t)
	dir := t.TempDir()
	var logs testenv.Buffer
	cfg := config(t, dir, &logs)
	cfg.UIPort = 0
	cfg.DB = pg.URL("onceflow_temporal")
	s := start(t, cfg)
	stopped := false
	defer func() {
		if !stopped {
			s.Stop()
		}
	}()
	assert.Equal(t, int32(devstack.DefaultShardsPostgres), s.HistoryShards, "4 shards by default on PostgreSQL")
	assert.Contains(t, s.TemporalStore, "PostgreSQL postgres://onceflow:xxxxx@"+pg.Addr+"/onceflow_temporal")
	_, err := os.Stat(filepath.Join(dir, "temporal.db"))
	assert.True(t, os.IsNotExist(err), "no SQLite database beside PostgreSQL")

	rcv := testenv.NewReceiver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 12
	for i := range n {
		post(t, s.APIURL, fmt.Sprintf("pg-order-%d", i), rcv.URL)
	}
	c := starter.New(s.Client, "")
	shards := make(map[string]bool)
	for i := range n {
		key := fmt.Sprintf("pg-order-%d", i)
		res, err := c.Wait(ctx, key)
		require.NoError(t, err)
		require.Len(t, res.Deliveries, 1)
		assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status, key)
		assert.Equal(t, 1, rcv.AppliedFor(key), "%s reached the receiver once", key)
		shards[shardOf(t, s, workflows.ID(key))] = true
	}
	// 12 workflows all on one of 4 shards would happen once in 4^11 runs.
	assert.Greater(t, len(shards), 1, "the notifications spread over the history shards: %v", shards)
	t.Logf("shards used: %v", shards)

	// The Web UI's list is a visibility query, answered by the visibility
	// database.
	require.Eventually(t, func() bool {
		resp, err := s.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: devstack.Namespace, Query: `OnceflowStatus="delivered" AND OnceflowChannels="webhook"`,
		})
		return err == nil && len(resp.GetExecutions()) == n
	}, 30*time.Second, 200*time.Millisecond)
	s.Stop()
	stopped = true

	// The shard count is the database's: another one is refused before
	// anything starts, naming both.
	cfg.TemporalPort = freePort(t)
	cfg.HistoryShards = 2
	_, err = devstack.Start(ctx, cfg)
	var mismatch *devstack.ShardMismatchError
	require.ErrorAs(t, err, &mismatch)
	assert.Equal(t, int32(2), mismatch.Requested)
	assert.Equal(t, int32(4), mismatch.Existing)
	assert.Contains(t, err.Error(), "--history-shards 2")
	assert.Contains(t, err.Error(), "created with 4 history shards")
	assert.NotContains(t, err.Error(), pg.Password())

	// With the right number, the stack starts again on the existing schema
	// and finds the notifications.
	cfg.TemporalPort = freePort(t)
	cfg.HistoryShards = 4
	s2 := start(t, cfg)
	defer s2.Stop()
	st, err := starter.New(s2.Client, "").Status(ctx, "pg-order-0")
	require.NoError(t, err)
	assert.Equal(t, "completed", st.Execution)

	serverLog, err := os.ReadFile(filepath.Join(dir, "temporal.log"))
	require.NoError(t, err)
	assert.NotContains(t, string(serverLog), pg.Password(), "the Temporal server's log")
	assert.NotContains(t, logs.String(), pg.Password(), "the dev stack's log")
}

func TestPostgresErrorsNameTheProblemButNotThePassword(t *testing.T) {
	pg := startPostgres(t)
	const secret = "s3cret-pa55"
	wrongPassword := "postgres://" + pgproc.User + ":" + secret + "@" + pg.Addr + "/temporal"
	for name, tc := range map[string]struct{ url, want string }{
		"not a URL":       {"postgres://u:" + secret + "@host\n/db", "--db is not a URL"},
		"another scheme":  {"mysql://u:" + secret + "@host/db", "the scheme must be postgres://"},
		"no user":         {"postgres://host/db", "needs a user and a host"},
		"odd database":    {"postgres://u:" + secret + "@host/Temporal;drop", `database name "Temporal;drop"`},
		"nothing listens": {"postgres://u:" + secret + "@127.0.0.1:1/temporal", "connect to database temporal of PostgreSQL postgres://u:xxxxx@127.0.0.1:1/temporal"},
		"wrong password":  {wrongPassword, "password authentication failed"},
		"negative shards": {"", "--history-shards must be positive"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := config(t, t.TempDir(), &testenv.Buffer{})
			cfg.DB = tc.url
			if tc.url == "" {
				cfg.HistoryShards = -1
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := devstack.Start(ctx, cfg)
			if s != nil {
				s.Stop()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), secret)
			assert.False(t, errors.Is(err, context.DeadlineExceeded))
		})
	}
}

func TestSQLiteRefusesAnotherShardCount(t *testing.T) {
	cfg := config(t, t.TempDir(), &testenv.Buffer{})
	cfg.UIPort, cfg.APIAddr, cfg.Workers = 0, "", 0
	s := start(t, cfg)
	assert.Equal(t, int32(devstack.DefaultShardsSQLite), s.HistoryShards, "one shard by default on SQLite, as before")
	s.Stop()

	cfg.TemporalPort, cfg.HistoryShards = freePort(t), 4
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := devstack.Start(ctx, cfg)
	var mismatch *devstack.ShardMismatchError
	require.ErrorAs(t, err, &mismatch)
	assert.Contains(t, err.Error(), "--history-shards 4, but the Temporal database in SQLite "+filepath.Join(cfg.DataDir, "temporal.db")+" was created with 1 history shards")
}
