//go:build linux

// Command onceflow-chaos is Onceflow's fault-injection harness: test
// tooling, not part of what users deploy. It runs the onceflow binary it is
// given as a Temporal server and as worker processes, with a real
// redis-server and local far ends for every channel (a webhook receiver,
// an SMTP relay, Twilio, FCM and Slack API servers); kills workers, kills
// and restarts Redis and Temporal and makes the far ends misbehave; then
// checks that nothing was lost, nothing took effect twice unreported and
// every ambiguous outcome has a cause the harness can show.
//
//	go build -o onceflow ./cmd/onceflow
//	go run ./cmd/onceflow-chaos --onceflow ./onceflow --notifications 10000
//	go run ./cmd/onceflow-chaos --onceflow ./onceflow --scaled   # PostgreSQL, Redis Cluster, 2 APIs
//
// Exit codes: 0 every invariant held; 1 the harness could not run; 2 bad
// flags; 3 an invariant failed (the report says which). See docs/chaos.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/onceflow/onceflow/internal/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg := chaos.Config{Logger: logger}
	fs := flag.NewFlagSet("onceflow-chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Binary, "onceflow", "onceflow", "the onceflow binary to run as the Temporal server and the workers (a path, or a name on PATH)")
	fs.IntVar(&cfg.Notifications, "notifications", 300, "notifications to send")
	fs.IntVar(&cfg.Starts, "starts", 3, "concurrent starts of each notification")
	fs.IntVar(&cfg.Workers, "workers", 3, "worker processes")
	fs.DurationVar(&cfg.KillEvery, "kill-every", 3*time.Second, "mean time between SIGKILLs of a random worker (0: none)")
	fs.IntVar(&cfg.RedisRestarts, "redis-restarts", 1, "restarts of redis-server during the run")
	fs.IntVar(&cfg.RedisKills, "redis-kills", 0, "SIGKILLs of redis-server during the run (each followed by a start)")
	fs.IntVar(&cfg.TemporalRestarts, "temporal-restarts", 1, "restarts of the Temporal server during the run")
	fs.IntVar(&cfg.TemporalKills, "temporal-kills", 0, "SIGKILLs of the Temporal server during the run (each followed by a start)")
	fs.Float64Var(&cfg.Receiver.ServerError, "server-errors", 0.05, "share of answers that are 500 without applying (SMTP: 451 to the message)")
	fs.Float64Var(&cfg.Receiver.AppliedError, "applied-errors", 0.02, "share of answers that are 500, 502 or 504 after applying (HTTP channels)")
	fs.Float64Var(&cfg.Receiver.TooMany, "too-many", 0.03, "share of answers that are 429 with Retry-After (SMTP: 421 to RCPT TO)")
	fs.Float64Var(&cfg.Receiver.Slow, "slow", 0.02, "share of answers that come after the send deadline, applied (SMTP: slow DATA)")
	fs.Float64Var(&cfg.Receiver.Reset, "resets", 0.02, "share of requests applied, then answered with a connection reset (SMTP: dropped after taking the message)")
	channels := fs.String("channels", strings.Join(chaos.Channels, ","), "channels notifications go to, one delivery each (webhook-raw: a receiver that never deduplicates)")
	fs.IntVar(&cfg.Broadcasts, "broadcasts", 0, "webhook broadcasts to start alongside the notifications (see --broadcast-recipients)")
	fs.IntVar(&cfg.BroadcastRecipients, "broadcast-recipients", 300, "recipients of each broadcast, each to the deduplicating or the raw receiver")
	fs.IntVar(&cfg.BroadcastChunk, "broadcast-chunk", chaos.DefaultBroadcastChunk, "recipients per chunk of a broadcast")
	fs.Float64Var(&cfg.SendRate, "send-rate", 40, "notifications started per second")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random seed, to repeat a run")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the servers' data and logs (default: a new temporary one)")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Minute, "give up after")
	settleScaled := scaledFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.Seed = *seed
	if err := settleScaled(); err != nil {
		fmt.Fprintln(stderr, "onceflow-chaos:", err)
		return 2
	}
	cfg.Receiver.SlowBy = 5 * time.Second
	for _, ch := range strings.Split(*channels, ",") {
		if ch = strings.TrimSpace(ch); !slices.Contains(chaos.Channels, ch) {
			fmt.Fprintf(stderr, "onceflow-chaos: --channels: %q is not one of %s\n", ch, strings.Join(chaos.Channels, ", "))
			return 2
		}
		cfg.Channels = append(cfg.Channels, ch)
	}
	if cfg.Notifications < 1 || cfg.Starts < 1 || cfg.Workers < 1 || cfg.SendRate <= 0 {
		fmt.Fprintln(stderr, "onceflow-chaos: --notifications, --starts, --workers and --send-rate must be positive")
		return 2
	}
	if err := checkBroadcastFlags(cfg); err != nil {
		fmt.Fprintln(stderr, "onceflow-chaos:", err)
		return 2
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		fmt.Fprintf(stderr, "onceflow-chaos: --onceflow %q: %v; build it with: go build -o onceflow ./cmd/onceflow\n", cfg.Binary, err)
		return 2
	}
	cfg.Binary = bin
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "onceflow-chaos-"); err != nil {
			fmt.Fprintln(stderr, "onceflow-chaos:", err)
			return 1
		}
		logger.Info("Chaos data and logs", "dir", cfg.Dir)
	}
	rep, err := chaos.Run(ctx, cfg)
	rep.Write(stdout)
	switch {
	case err != nil:
		fmt.Fprintln(stderr, "onceflow-chaos:", err)
		return 1
	case !rep.OK():
		fmt.Fprintln(stderr, "onceflow-chaos: an invariant failed; see the report")
		return 3
	}
	return 0
}
