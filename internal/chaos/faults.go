//go:build linux

package chaos

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"syscall"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// Process fault kinds, as the report names them.
const (
	workerKill      = "worker SIGKILL"
	redisRestart    = "redis restart"
	redisKill       = "redis SIGKILL"
	temporalRestart = "temporal restart"
	temporalKill    = "temporal SIGKILL"
)

// injectFaults SIGKILLs a random worker at random, exponentially spaced
// moments until every workflow has closed (closed), restarting it 0.2-2 s
// later; and restarts and SIGKILLs Redis and the Temporal server at moments
// spread over the sending, in an order drawn from the seed. It returns once
// every workflow has closed and every planned event happened.
func (h *harness) injectFaults(ctx context.Context, rng *rand.Rand, sending, closed <-chan struct{}) {
	cfg := h.cfg
	sendFor := time.Duration(float64(cfg.Notifications) / cfg.SendRate * float64(time.Second))
	var plan []string
	for kind, n := range map[string]int{redisRestart: cfg.RedisRestarts, redisKill: cfg.RedisKills,
		temporalRestart: cfg.TemporalRestarts, temporalKill: cfg.TemporalKills, redisPrimaryKill: cfg.Scaled.PrimaryKills} {
		for range n {
			plan = append(plan, kind)
		}
	}
	// Map order is random: sort, then shuffle by the seed.
	sort.Strings(plan)
	rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	at := func(i int) time.Duration { return sendFor * time.Duration(i+1) / time.Duration(len(plan)+1) }

	begin := time.Now()
	nextKill := func() <-chan time.Time {
		if cfg.KillEvery <= 0 || len(h.workers) == 0 {
			return nil
		}
		return time.After(time.Duration(rng.ExpFloat64() * float64(cfg.KillEvery)))
	}
	kill := nextKill()
	supervise := time.NewTicker(time.Second)
	defer supervise.Stop()
	done := false
	for next := 0; !done || next < len(plan); {
		var planned <-chan time.Time
		if next < len(plan) {
			planned = time.After(time.Until(begin.Add(at(next))))
		}
		select {
		case <-ctx.Done():
			return
		case <-sending:
			// Planned events are spread over the sending; should it end
			// early, the rest follow at once.
			sending, begin = nil, begin.Add(-sendFor)
		case <-closed:
			closed, kill, done = nil, nil, true
		case <-supervise.C:
			h.restartExited()
		case <-kill:
			w := h.workers[rng.IntN(len(h.workers))]
			h.killWorker(ctx, w, time.Duration(200+rng.IntN(1800))*time.Millisecond)
			kill = nextKill()
		case <-planned:
			kind := plan[next]
			next++
			h.log.Info("fault", "kind", kind)
			switch kind {
			case redisRestart, redisKill:
				h.bounce(ctx, h.rds, kind, h.redisUp)
			case temporalRestart, temporalKill:
				h.bounce(ctx, h.tsrv, kind, h.temporalUp)
			case redisPrimaryKill:
				h.killPrimary(ctx, rng)
			}
		}
	}
}

// restartExited starts again the workers that exited by themselves: a
// worker started while the Temporal server is down exits at once.
func (h *harness) restartExited() {
	for _, w := range h.workers {
		if w.running() {
			continue
		}
		h.mu.Lock()
		h.rep.WorkerExits++
		h.mu.Unlock()
		h.log.Info("worker exited by itself; starting it again", "process", w.name)
		if err := w.start(nil); err != nil {
			h.harnessError("restart %s: %v", w.name, err)
		}
	}
}

// killWorker SIGKILLs w and starts it again after pause. The kill counts
// when w died of it; it counts as one that hit a live lease when it
// interrupted a delivery whose lease w held (leaseProbe).
//
// The leases w holds are read twice: just before the kill and just after
// it. An attempt that w started between the first read and the kill claims
// leases the first read cannot see (a broadcast chunk claims all its
// recipients within milliseconds of starting), and once w is dead nothing
// releases them: Temporal still names w's attempt as the activity's
// current one until it times out, so the second read finds them. With the
// first read alone, the sends such a kill cut off were reported ambiguous
// "without evidence" (issue #30).
func (h *harness) killWorker(ctx context.Context, w *process, pause time.Duration) {
	pid := w.pid()
	if !w.running() {
		// It exited by itself; restartExited starts it again.
		return
	}
	before, perr := h.leases.held(ctx, pid)
	h.log.Info("SIGKILL", "process", w.name, "leases", len(before))
	died, err := w.stop(syscall.SIGKILL)
	if !died {
		h.harnessError("SIGKILL of %s did not take: %v", w.name, err)
	} else {
		h.count(workerKill)
		after, aerr := h.leases.held(ctx, pid)
		held := joinLeases(before, after)
		if late := len(held) - len(before); late > 0 {
			h.log.Info("leases claimed between the probe and the kill", "process", w.name, "leases", late)
		}
		hit, ierr := h.leases.interrupted(ctx, held)
		h.mu.Lock()
		switch {
		case perr != nil || aerr != nil || ierr != nil:
			h.rep.KillsUnattributed++
			h.log.Info("kill not attributed", "process", w.name, "error", errors.Join(perr, aerr, ierr))
		case len(hit) > 0:
			h.rep.KillsHitLiveLease++
		}
		for _, k := range hit {
			h.interrupted[k] = true
		}
		h.rep.LeasesInterrupted += len(hit)
		h.mu.Unlock()
	}
	sleep(ctx, pause)
	if err := w.start(nil); err != nil {
		h.harnessError("restart %s: %v", w.name, err)
	}
}

// joinLeases is a followed by the leases of b that a does not hold.
func joinLeases(a, b []lease) []lease {
	seen := make(map[lease]bool, len(a))
	for _, l := range a {
		seen[l] = true
	}
	out := append([]lease(nil), a...)
	for _, l := range b {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// bounce stops p (SIGTERM for a restart, SIGKILL for a kill), starts it
// again and waits until up says it serves. A kill counts when p died of
// it; a restart when p came back.
func (h *harness) bounce(ctx context.Context, p *process, kind string, up func(context.Context) error) {
	sig := syscall.SIGTERM
	if kind == redisKill || kind == temporalKill {
		sig = syscall.SIGKILL
	}
	died, err := p.stop(sig)
	switch {
	case sig == syscall.SIGKILL && died:
		h.count(kind)
	case sig == syscall.SIGKILL:
		h.harnessError("%s: %v", kind, err)
	case err != nil:
		h.harnessError("%s: stop: %v", kind, err)
	}
	if err := p.start(nil); err != nil {
		h.harnessError("%s: start again: %v", kind, err)
		return
	}
	if err := up(ctx); err != nil {
		h.harnessError("%s: did not come back: %v", kind, err)
		return
	}
	if sig == syscall.SIGTERM {
		h.count(kind)
	}
}

// redisUp waits until Redis answers PING, for up to a minute.
func (h *harness) redisUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		err := h.rdb.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

// temporalUp waits until the Temporal server answers a health check and a
// namespace lookup, for up to five minutes: on a loaded machine a server
// that reloads thousands of open workflows takes minutes to serve again.
func (h *harness) temporalUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		_, err := h.tc.CheckHealth(ctx, &client.CheckHealthRequest{})
		if err == nil {
			_, err = h.tc.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// quietLogger keeps the harness's own Temporal client from logging every
// connection error while servers restart.
func quietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}
