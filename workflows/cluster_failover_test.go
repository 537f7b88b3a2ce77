package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/workflows"
)

// failoverRun is what became of a run of deliveries across a primary's
// failover.
type failoverRun struct {
	statuses         map[onceflow.Status]int
	duplicates       int // deliveries the receiver got more than once
	silentDuplicates int // ... without the result saying ambiguous
	lost             int // delivered or suppressed, yet never received
	unfinished       int
	redisErrors      int            // claims and commits that failed, most while the primary was down
	notReplicated    int            // claims refused because no replica acknowledged them
	ambiguousGrants  int            // claims that found an earlier attempt's lease run out
	reasons          map[string]int // why deliveries ended ambiguous or failed
}

// countingStore counts what the dedup store answered during the run.
type countingStore struct {
	activities.Store
	errors, notReplicated, ambiguous atomic.Int64
}

func (c *countingStore) Claim(ctx context.Context, rec dedup.Record, token string, lease time.Duration) (dedup.Claim, error) {
	cl, err := c.Store.Claim(ctx, rec, token, lease)
	switch {
	case errors.Is(err, dedup.ErrNotReplicated):
		c.notReplicated.Add(1)
	case err != nil:
		c.errors.Add(1)
	case cl.Ambiguous:
		c.ambiguous.Add(1)
	}
	return cl, err
}

func (c *countingStore) Commit(ctx context.Context, rec dedup.Record, token, receipt string, outcome dedup.Outcome) error {
	err := c.Store.Commit(ctx, rec, token, receipt, outcome)
	if err != nil {
		c.errors.Add(1)
	}
	return err
}

// A Redis Cluster primary is killed (SIGKILL, no chance to flush) while
// notifications are delivered, its replica takes over, and the killed node
// comes back (as an orchestrator restarts a crashed pod) as the new
// primary's replica. Every delivery still ends delivered, suppressed or
// ambiguous: none is lost, and the receiver gets none twice unless the
// result says ambiguous. The run is made with claims that wait for the
// replica (ONCEFLOW_REDIS_WAIT_REPLICAS=1), where that holds by
// construction, and without, where a claim acknowledged by the primary
// alone may be lost with it; the figures are logged.
func TestDeliveriesSurviveARedisPrimaryFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 6-node Redis Cluster and runs deliveries across a failover")
	}
	for _, wait := range []int{1, 0} {
		t.Run(fmt.Sprintf("wait=%d", wait), func(t *testing.T) {
			r := runAcrossFailover(t, wait, 300)
			t.Logf("WAIT %d: %v; %d received twice (%d silently), %d lost; %d Redis errors, %d claims unreplicated, %d ambiguous claims",
				wait, r.statuses, r.duplicates, r.silentDuplicates, r.lost, r.redisErrors, r.notReplicated, r.ambiguousGrants)
			for why, n := range r.reasons {
				t.Logf("  %d %s", n, why)
			}
			assert.Positive(t, r.redisErrors+r.notReplicated, "the failover hit deliveries under way")
			assert.Zero(t, r.unfinished, "every notification finished")
			assert.Zero(t, r.lost, "no delivery reported done was never received")
			assert.Zero(t, r.statuses[onceflow.Failed], "failover is not a reason to give up")
			if wait > 0 {
				assert.Zero(t, r.silentDuplicates, "a claim the replica has survives the failover")
			}
		})
	}
}

// progressBound is how long the failover run waits for one start, and for
// the next delivery to finish, before it calls the run stalled.
const progressBound = time.Minute

// failoverPolicy is the test stack's short attempts and retries, with a
// delivery's retries outlasting the failover however slow the machine: the
// test stack gives up after a minute, which a failover plus a restart under
// a loaded suite (other packages' Temporal servers on the same 2 cores)
// outlasted, failing deliveries that had sent nothing. Production retries
// for a day (workflows.DefaultPolicy).
var failoverPolicy = workflows.Policy{
	AttemptTimeout:   teststack.Policy.AttemptTimeout,
	FirstRetry:       teststack.Policy.FirstRetry,
	MaxRetryInterval: teststack.Policy.MaxRetryInterval,
	GiveUpAfter:      30 * time.Minute,
}

func runAcrossFailover(t *testing.T, wait, n int) failoverRun {
	ctx := ctxFor(t)
	cluster, err := testenv.StartCluster(t.TempDir(), "")
	require.NoError(t, err)
	t.Cleanup(cluster.Cleanup)
	cfg := servers.WorkerConfig()
	cfg.RedisURL, cfg.WaitReplicas = cluster.URL(), wait
	counts := &countingStore{}
	s := servers.NewWithPolicy(t, cfg, failoverPolicy, func(st activities.Store) activities.Store { counts.Store = st; return counts })
	rcv := testenv.NewReceiver(t)

	notification := func(i int) onceflow.Notification {
		return onceflow.Notification{
			Key:        fmt.Sprintf("failover-%d-%d", wait, i),
			Body:       "Your order is on its way.",
			Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: fmt.Sprintf("%s/hook/%d", rcv.URL, i)}},
		}
	}
	// The primary to kill serves about a third of the keys.
	rdb := cluster.Client(t)
	primary, err := rdb.MasterForKey(ctx, "failover")
	require.NoError(t, err)
	victim := cluster.Node(primary.Options().Addr)
	require.NotNil(t, victim)

	started := make(chan starter.Started, n)
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				// Each start has its own bound: under a loaded suite the
				// 300 starts alone outlasted one shared 2-minute budget.
				sctx, cancel := context.WithTimeout(context.Background(), progressBound)
				st, err := s.Client.Send(sctx, notification(i))
				cancel()
				if assert.NoError(t, err) {
					started <- st
				}
			}
		}()
	}
	// Kill the primary once a third of the deliveries have reached the
	// receiver, while the others are being claimed, sent and committed.
	// These outer bounds only catch a run that never gets there: they cost
	// nothing when it does.
	require.Eventually(t, func() bool { return len(rcv.Log()) >= n/3 }, 3*time.Minute, 10*time.Millisecond)
	victim.Kill()
	healthy, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, cluster.WaitHealthy(healthy, 5), "the replica took over")
	// The node comes back a little later, as a restarted pod would; until
	// then the new primary has no replica, and with WAIT its claims are
	// refused.
	time.Sleep(2 * time.Second)
	require.NoError(t, victim.Restart())
	require.NoError(t, cluster.WaitHealthy(healthy, 6), "the killed node is back, as a replica")
	wg.Wait()
	close(started)

	t.Logf("%d of %d started; the primary was killed once %d had been received, and its node is back", len(started), n, n/3)

	// Each run is waited for with its own bound, counted from when the one
	// before it finished: the wait fails when deliveries stop finishing, not
	// when a total budget runs out. Under -race the 300 deliveries alone took
	// about 110 s, and one 2-minute budget that also paid for the sends and
	// the failover was outgrown by the detector's slowdown, not by a stall.
	r := failoverRun{statuses: map[onceflow.Status]int{}, reasons: map[string]int{}}
	waitStart, stall := time.Now(), progressBound
	for st := range started {
		wctx, cancel := context.WithTimeout(context.Background(), stall)
		res, err := s.Client.WaitRun(wctx, st)
		cancel()
		if !assert.NoError(t, err, "%s: no delivery finished within %v", st.WorkflowID, stall) {
			r.unfinished++
			stall = time.Second // stalled: the rest are only looked at
			continue
		}
		d := res.Deliveries[0]
		r.statuses[d.Status]++
		if d.Status == onceflow.Ambiguous || d.Status == onceflow.Failed {
			r.reasons[string(d.Status)+": "+d.Reason]++
		}
		got := rcv.Raw(d.DeliveryID)
		switch {
		case got > 1 && d.Status != onceflow.Ambiguous:
			r.duplicates++
			r.silentDuplicates++
		case got > 1:
			r.duplicates++
		case got == 0 && (d.Status == onceflow.Delivered || d.Status == onceflow.Suppressed):
			r.lost++
		}
		if !d.Status.Final() {
			r.unfinished++
		}
	}
	t.Logf("waited %v for the %d runs after the node came back", time.Since(waitStart).Round(time.Second), n)
	r.redisErrors, r.notReplicated, r.ambiguousGrants = int(counts.errors.Load()), int(counts.notReplicated.Load()), int(counts.ambiguous.Load())
	return r
}
