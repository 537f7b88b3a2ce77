//go:build linux

package chaos

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"syscall"
	"time"

	sdklog "go.temporal.io/sdk/log"

	"github.com/onceflow/onceflow/internal/redisproc"
)

// injectFaults kills and restarts workers at random, exponentially spaced
// moments, and restarts Redis and the Temporal server at moments spread over
// the sending, until sending is done and every planned restart happened.
func injectFaults(ctx context.Context, cfg Config, rng *rand.Rand, sending <-chan struct{}, workers []*process,
	rds *redisproc.Server, tsrv *process, count func(string), log *slog.Logger) {
	sendFor := time.Duration(float64(cfg.Notifications) / cfg.SendRate * float64(time.Second))
	type restart struct {
		at   time.Duration
		kind string
	}
	var plan []restart
	for i := 1; i <= cfg.RedisRestarts; i++ {
		plan = append(plan, restart{sendFor * time.Duration(i) / time.Duration(cfg.RedisRestarts+1), "redis restart"})
	}
	for i := 1; i <= cfg.TemporalRestarts; i++ {
		// Offset from the Redis restarts so that they do not coincide.
		plan = append(plan, restart{sendFor*time.Duration(i)/time.Duration(cfg.TemporalRestarts+1) + sendFor/7, "temporal restart"})
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].at < plan[j].at })

	begin := time.Now()
	nextKill := func() <-chan time.Time {
		if cfg.KillEvery <= 0 || len(workers) == 0 {
			return nil
		}
		return time.After(time.Duration(rng.ExpFloat64() * float64(cfg.KillEvery)))
	}
	kill := nextKill()
	done := false
	for !done || len(plan) > 0 {
		var planned <-chan time.Time
		if len(plan) > 0 {
			planned = time.After(time.Until(begin.Add(plan[0].at)))
		}
		select {
		case <-ctx.Done():
			return
		case <-sending:
			sending, kill, done = nil, nil, true
		case <-kill:
			w := workers[rng.IntN(len(workers))]
			log.Info("SIGKILL", "process", w.name)
			w.stop(syscall.SIGKILL)
			count("worker SIGKILL")
			time.Sleep(time.Duration(200+rng.IntN(1800)) * time.Millisecond)
			if err := w.start(nil); err != nil {
				log.Error("restart worker", "process", w.name, "error", err)
			}
			kill = nextKill()
		case <-planned:
			r := plan[0]
			plan = plan[1:]
			log.Info("restart", "kind", r.kind)
			switch r.kind {
			case "redis restart":
				if err := rds.Restart(); err != nil {
					log.Error("restart redis", "error", err)
				}
			case "temporal restart":
				tsrv.stop(syscall.SIGTERM)
				if err := tsrv.start(nil); err != nil {
					log.Error("restart temporal", "error", err)
				}
			}
			count(r.kind)
		}
	}
}

// quietLogger keeps the harness's own Temporal client from logging every
// connection error while servers restart.
func quietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}
