package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"

	"github.com/onceflow/onceflow/redisconn"
)

// ping is a health check for containers: it exits 0 when what the process
// depends on answers.
func (a *app) ping(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	api := fs.String("api", "", "check this API base URL's /healthz instead of Temporal and Redis")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if *api != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, *api+"/healthz", nil)
		if err != nil {
			return inputErrorf("--api %q: %v", *api, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("API at %s: %w", *api, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("API at %s: /healthz answered %s", *api, resp.Status)
		}
		fmt.Fprintln(a.stdout, "api ok")
		return nil
	}
	tc, _, err := a.dial(ctx)
	if err != nil {
		return err
	}
	tc.Close()
	cfg, err := redisconn.Load(a.getenv)
	if err != nil {
		return inputError{err}
	}
	rdb, err := cfg.Open(true)
	if err != nil {
		return inputError{err}
	}
	defer func() { _ = rdb.Close() }()
	if err := redisconn.Ping(ctx, rdb); err != nil {
		return fmt.Errorf("redis at %s (%s): %w", cfg.Redacted(), redisconn.EnvURL, err)
	}
	fmt.Fprintln(a.stdout, "temporal ok, redis ok")
	return nil
}
