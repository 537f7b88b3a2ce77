package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/digest"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/envvar"
	"github.com/onceflow/onceflow/revocation"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/worker"
	"github.com/redis/go-redis/v9"
)

// EnvAPIAddr names the variable with the API's listen address.
const EnvAPIAddr = "ONCEFLOW_API_ADDR"

func (a *app) api(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	cfg, err := a.config()
	if err != nil {
		return err
	}
	addr := fs.String("addr", envvar.APIAddr.Get(a.getenv), "listen address ("+EnvAPIAddr+")")
	taskQueue := fs.String("task-queue", cfg.TaskQueue, "task queue of the workers ("+worker.EnvTaskQueue+")")
	tokensFile := a.tokensFlag(fs)
	if err := a.parse(fs, args); err != nil {
		return err
	}
	tokens, err := a.loadTokens(*tokensFile)
	if err != nil {
		return err
	}
	if err := requireTokensOffLoopback(*addr, tokens); err != nil {
		return err
	}
	opts, err := a.ledger()
	if err != nil {
		return err
	}
	var apiOpts []httpapi.Option
	var rdb redis.UniversalClient
	if cfg.Redis.Configured() {
		if rdb, err = a.redis(); err != nil {
			return err
		}
		apiOpts = append(apiOpts, httpapi.WithPreferences(a.preferenceService(rdb, cfg)), httpapi.WithRevocation(revocation.New(rdb))) // preferences.go
		// The public routes' budgets, shared by every API process.
		apiOpts = append(apiOpts, httpapi.WithLimits(rdb, cfg.Limits))
	}
	feedOpts, err := a.feedAPI()
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx) // stops the metrics server on return
	defer stop()
	reg, err := a.serveMetrics(ctx)
	if err != nil {
		return err
	}
	tc, _, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer tc.Close()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return inputErrorf("--addr %s: %v", *addr, err)
	}
	defer a.reloadTokens(ctx, tokens)()
	a.logger.Info("API listening", "url", "http://"+l.Addr().String()+"/v1/notifications", "openapi", "http://"+l.Addr().String()+"/v1/openapi.yaml")
	notifications := starter.New(tc, *taskQueue, opts...)
	if rdb != nil {
		apiOpts = append(apiOpts, httpapi.WithBroadcasts(a.broadcasts(notifications, rdb, cfg))) // broadcast.go
	}
	h, err := a.withCodecEndpoint(instrument(reg, httpapi.Handler(notifications, a.logger, append(append(apiOpts, feedOpts...), httpapi.WithTokens(tokens), httpapi.WithDigests(digest.NewClient(tc)))...)), tokens)
	if err != nil {
		return err
	}
	return serve(ctx, l, a.tracing.Handler(h))
}

// serve serves h on l until ctx is done, then lets requests in flight
// finish for up to 10s.
func serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := httpapi.NewServer(h, httpapi.DefaultTimeouts())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve API: %w", err)
	case <-ctx.Done():
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(stopCtx); err != nil {
		return fmt.Errorf("stop API: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ledger returns the options of a command's starter: the send_at bound
// (EnvMaxSendAhead), and how it reads the dedup ledger: when REDIS_URL
// is set, Send refuses a key whose records hold another payload's
// fingerprint, even after Temporal has deleted that notification. Without
// it the workers' claims still refuse such a payload, later and without
// a 422 or exit code 2 to show for it.
func (a *app) ledger() ([]starter.Option, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	ahead := starter.WithMaxSendAhead(cfg.MaxSendAhead)
	if !cfg.Redis.Configured() {
		return []starter.Option{ahead}, nil
	}
	rdb, err := a.redis()
	if err != nil {
		return nil, err
	}
	return []starter.Option{ahead, starter.WithLedger(dedup.New(rdb, 0)), starter.WithLogger(a.logger)}, nil
}
