//go:build !nodev

package main

import (
	"context"
	"flag"
	"fmt"
	"math"

	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/devstack"
	"github.com/onceflow/onceflow/redisconn"
	"github.com/onceflow/onceflow/worker"
)

func (a *app) dev(ctx context.Context, args []string) error {
	wcfg, err := worker.LoadConfig(a.getenv)
	if err != nil {
		return inputError{err}
	}
	keys, err := codec.LoadKeys(a.getenv)
	if err != nil {
		return inputError{err}
	}
	cfg := devstack.Config{Worker: wcfg, Logger: a.logger, CodecKeys: keys, Tracing: a.tracing}
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", ".onceflow", "where the Temporal database, Redis's append-only file and the webhook secret are kept")
	fs.IntVar(&cfg.TemporalPort, "temporal-port", 7233, "Temporal gRPC port")
	fs.IntVar(&cfg.UIPort, "ui-port", 8233, "Temporal Web UI port (0: no UI)")
	fs.StringVar(&cfg.APIAddr, "api-addr", "127.0.0.1:8080", "HTTP API listen address")
	fs.IntVar(&cfg.Workers, "workers", 1, "number of workers in this process (0: none; run onceflow worker separately)")
	fs.StringVar(&cfg.DB, "db", a.getenv(devstack.EnvDB), "postgres://user:password@host:port/database for the Temporal server's data instead of SQLite in --data-dir; visibility goes to <database>"+devstack.VisibilitySuffix+"; both are created when missing ("+devstack.EnvDB+")")
	shards := fs.Int("history-shards", 0, fmt.Sprintf("Temporal history shards, fixed when the database is created (default %d on SQLite, %d on PostgreSQL)", devstack.DefaultShardsSQLite, devstack.DefaultShardsPostgres))
	fs.StringVar(&cfg.RedisURL, "redis-url", a.getenv(redisconn.EnvURL), "use this Redis instead of starting one ("+redisconn.EnvURL+")")
	tokensFile := a.tokensFlag(fs)
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if cfg.APITokens, err = a.loadTokens(*tokensFile); err != nil {
		return err
	}
	cfg.FeedOrigins = httpapi.ParseOrigins(a.getenv(httpapi.EnvFeedOrigins))
	if cfg.Limits, err = httpapi.LoadLimits(a.getenv); err != nil {
		return inputError{err}
	}
	if cfg.APIAddr != "" {
		if err := requireTokensOffLoopback(cfg.APIAddr, cfg.APITokens); err != nil {
			return err
		}
	}
	defer a.reloadTokens(ctx, cfg.APITokens)()
	if cfg.Workers < 0 {
		return inputErrorf("--workers must not be negative, got %d", cfg.Workers)
	}
	if *shards < 0 || *shards > math.MaxInt32 {
		return inputErrorf("--history-shards must be positive, got %d", *shards)
	}
	cfg.HistoryShards = int32(*shards)
	if cfg.DB != "" {
		if err := devstack.CheckDB(cfg.DB); err != nil {
			return inputError{err}
		}
	}
	stack, err := devstack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Onceflow dev stack is running. Ctrl-C stops it.\n")
	fmt.Fprintf(a.stdout, "  Temporal gRPC  %s (namespace %s)\n", stack.TemporalAddress, devstack.Namespace)
	fmt.Fprintf(a.stdout, "  Temporal data  %s, %d history shards\n", stack.TemporalStore, stack.HistoryShards)
	fmt.Fprintf(a.stdout, "  Web UI         %s\n", orDash(stack.UIURL))
	if stack.APIURL != "" {
		fmt.Fprintf(a.stdout, "  HTTP API       %s/v1/notifications  (OpenAPI: %s/v1/openapi.yaml)\n", stack.APIURL, stack.APIURL)
		fmt.Fprintf(a.stdout, "  Demo receiver  %s%s  (verifies signatures, logs what arrives)\n", stack.APIURL, devstack.DemoWebhookPath)
	}
	if keys != nil {
		fmt.Fprintf(a.stdout, "  Payloads       encrypted (%s)\n", keys)
		if stack.APIURL != "" {
			fmt.Fprintf(a.stdout, "  Codec endpoint %s/codec  (the Web UI decodes payloads through it)\n", stack.APIURL)
		}
	}
	fmt.Fprintf(a.stdout, "  Redis          %s (%s)\n", redisconn.Redact(stack.RedisURL), stack.RedisKind)
	fmt.Fprintf(a.stdout, "  Workers        %d on task queue %q\n", cfg.Workers, cfg.Worker.TaskQueue)
	fmt.Fprintf(a.stdout, "  Data           %s\n", cfg.DataDir)
	<-ctx.Done()
	a.logger.Info("Stopping the dev stack")
	stack.Stop()
	a.logger.Info("Dev stack stopped")
	return nil
}
