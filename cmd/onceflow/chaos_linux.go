//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"time"

	"github.com/onceflow/onceflow/internal/chaos"
)

var errInvariants = errors.New("an invariant failed; see the report")

func (a *app) chaos(ctx context.Context, args []string) error {
	cfg := chaos.Config{Logger: a.logger}
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.IntVar(&cfg.Notifications, "notifications", 300, "notifications to send")
	fs.IntVar(&cfg.Starts, "starts", 3, "concurrent starts of each notification")
	fs.IntVar(&cfg.Workers, "workers", 3, "worker processes")
	fs.DurationVar(&cfg.KillEvery, "kill-every", 3*time.Second, "mean time between SIGKILLs of a random worker (0: none)")
	fs.IntVar(&cfg.RedisRestarts, "redis-restarts", 1, "restarts of redis-server during the run")
	fs.IntVar(&cfg.TemporalRestarts, "temporal-restarts", 1, "restarts of the Temporal server during the run")
	fs.Float64Var(&cfg.Receiver.ServerError, "server-errors", 0.05, "share of receiver answers that are 500")
	fs.Float64Var(&cfg.Receiver.TooMany, "too-many", 0.03, "share of receiver answers that are 429 with Retry-After")
	fs.Float64Var(&cfg.Receiver.Slow, "slow", 0.02, "share of receiver answers that come after the send deadline")
	fs.Float64Var(&cfg.Receiver.Reset, "resets", 0.02, "share of requests answered with a connection reset")
	fs.Float64Var(&cfg.SendRate, "send-rate", 40, "notifications started per second")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random seed, to repeat a run")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the servers' data and logs (default: a new temporary one)")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Minute, "give up after")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	cfg.Seed = *seed
	cfg.Receiver.SlowBy = 5 * time.Second
	if cfg.Notifications < 1 || cfg.Starts < 1 || cfg.Workers < 1 || cfg.SendRate <= 0 {
		return inputErrorf("--notifications, --starts, --workers and --send-rate must be positive")
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Binary = bin
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "onceflow-chaos-"); err != nil {
			return err
		}
		a.logger.Info("Chaos data and logs", "dir", cfg.Dir)
	}
	rep, err := chaos.Run(ctx, cfg)
	rep.Write(a.stdout)
	if err != nil {
		return err
	}
	if !rep.OK() {
		return errInvariants
	}
	return nil
}
