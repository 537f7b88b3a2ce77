package starter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
)

// holdingProxy forwards TCP connections to Redis. While held, it forwards
// requests but keeps Redis's replies back: a worker's feed script runs in
// Redis, and the worker never learns that it did.
type holdingProxy struct {
	l      net.Listener
	target string
	held   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newHoldingProxy(t *testing.T, target string) *holdingProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &holdingProxy{l: l, target: target}
	go p.serve()
	t.Cleanup(func() {
		_ = l.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			_ = c.Close()
		}
	})
	return p
}

func (p *holdingProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
		go func() {
			defer func() { _ = c.Close() }()
			buf := make([]byte, 32<<10)
			for {
				n, err := up.Read(buf)
				for p.held.Load() {
					time.Sleep(5 * time.Millisecond)
				}
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// feedItems counts each item id in the subscribers' feeds.
func feedItems(ctx context.Context, t *testing.T, s *feed.Store, subs []string) map[string]int {
	seen := map[string]int{}
	for _, sub := range subs {
		for cursor := ""; ; {
			p, err := s.Page(ctx, "acme", sub, cursor, feed.MaxLimit)
			require.NoError(t, err)
			for _, it := range p.Items {
				seen[it.ID]++
			}
			if p.NextCursor == nil {
				break
			}
			cursor = *p.NextCursor
		}
	}
	return seen
}

// feedTotal counts the items of the subscribers' feeds.
func feedTotal(ctx context.Context, t *testing.T, s *feed.Store, subs []string) int {
	total := 0
	for _, n := range feedItems(ctx, t, s, subs) {
		total += n
	}
	return total
}

// TestInAppSurvivesWorkersKilledBetweenWriteAndReport runs in-app
// notifications on `onceflow worker` processes whose Redis replies are
// held back, so that each feed script in flight runs in Redis but its
// worker never hears of it, and kills the workers with SIGKILL there, in
// the window between the atomic write-and-commit and the activity's
// completion, three times over; then a worker finishes the rest. Every
// item is in its feed exactly once, and every delivery is delivered: none
// ambiguous, none failed, none written twice.
func TestInAppSurvivesWorkersKilledBetweenWriteAndReport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the onceflow binary")
	}
	bin := filepath.Join(t.TempDir(), "onceflow")
	out, err := exec.Command("go", "build", "-tags", "nodev", "-o", bin, "github.com/onceflow/onceflow/cmd/onceflow").CombinedOutput()
	require.NoError(t, err, "%s", out)

	ctx := teststack.Context(t)
	const rounds, perRound, workers = 3, 60, 2
	queue := "q-" + strings.ReplaceAll(t.Name(), "/", "-")
	proxy := newHoldingProxy(t, servers.Redis.Addr)
	store := feed.New(servers.Redis.Client(t), time.Hour, time.Hour)
	c := starter.New(servers.Temporal.GetDefaultClient(), queue).ForTenant("acme")
	// The feed script is in Redis's script cache before a worker's first
	// call, so that a held reply is never a NOSCRIPT the worker would
	// have to answer before its script runs.
	_, _, err = store.Deliver(ctx, feed.Delivery{Tenant: "acme", Subscriber: "warm-up", DeliveryID: "dlv_warm", Token: "w/1", Activity: "w"})
	require.NoError(t, err)

	subs := []string{"ada", "bob", "cyd", "dee", "eve"}
	var runs []starter.Started
	var logs testenv.Buffer
	for round := range rounds {
		var procs []*exec.Cmd
		for range workers {
			w := exec.Command(bin, "worker")
			w.Env = append(os.Environ(),
				"TEMPORAL_ADDRESS="+servers.Temporal.GetFrontendHostPort(), "TEMPORAL_NAMESPACE="+servers.Temporal.GetDefaultNamespace(),
				"REDIS_URL=redis://"+proxy.l.Addr().String()+"/0", "ONCEFLOW_WEBHOOK_SECRET="+testenv.WebhookSecret,
				"ONCEFLOW_TASK_QUEUE="+queue, "ONCEFLOW_ATTEMPT_TIMEOUT=3s")
			w.Stdout, w.Stderr = &logs, &logs
			w.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			require.NoError(t, w.Start())
			procs = append(procs, w)
		}
		before := feedTotal(ctx, t, store, subs)
		for i := range perRound {
			k := round*perRound + i
			// Two subscribers per notification: two in-app deliveries.
			n := onceflow.Notification{Key: fmt.Sprintf("kill-%03d", k), Subject: "Update", Body: fmt.Sprintf("update %d", k),
				Deliveries: []onceflow.Delivery{{Channel: onceflow.InApp, To: subs[k%5]}, {Channel: onceflow.InApp, To: subs[(k+1)%5]}}}
			started, err := c.Send(ctx, n)
			require.NoError(t, err)
			runs = append(runs, started)
		}
		require.Eventually(t, func() bool { return feedTotal(ctx, t, store, subs) > before }, time.Minute, 10*time.Millisecond,
			"round %d: the workers never wrote an item:\n%s", round, logs.String())
		proxy.held.Store(true)
		// Scripts keep running in Redis while their replies are held:
		// wait until some have.
		held := feedTotal(ctx, t, store, subs)
		require.Eventually(t, func() bool { return feedTotal(ctx, t, store, subs) > held }, time.Minute, 10*time.Millisecond,
			"round %d: no script ran while the replies were held", round)
		for _, w := range procs {
			require.NoError(t, w.Process.Signal(syscall.SIGKILL))
			err := w.Wait()
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL, "worker died of SIGKILL: %v", err)
		}
		proxy.held.Store(false)
		t.Logf("round %d: %d items written, %d of them while the replies were held, before the kill", round, feedTotal(ctx, t, store, subs)-before, feedTotal(ctx, t, store, subs)-held)
	}

	servers.New(t, servers.WorkerConfig(), nil) // an in-process worker takes over the task queue
	writtenEarlier := 0
	ids := map[string]bool{}
	for _, run := range runs {
		res, err := c.WaitRun(ctx, run)
		require.NoError(t, err)
		for _, d := range res.Deliveries {
			require.Equal(t, onceflow.Delivered, d.Status, "%s: %s", d.DeliveryID, d.Reason)
			ids[d.DeliveryID] = true
			if strings.Contains(d.Reason, "earlier attempt of this delivery") {
				writtenEarlier++
			}
		}
	}
	require.Len(t, ids, rounds*perRound*2)

	seen := feedItems(ctx, t, store, subs)
	for id := range ids {
		assert.Equal(t, 1, seen[id], "delivery %s is in its feed once", id)
	}
	assert.Len(t, seen, len(ids), "nothing else is in the feeds")
	t.Logf("%d deliveries, %d of them written by an attempt whose worker was killed before it reported", len(ids), writtenEarlier)
	assert.Positive(t, writtenEarlier, "the kills fell between a write and its report")
}
