package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow/events"
	"github.com/onceflow/onceflow/providers/egress"
)

// loadEvents reads the events settings into cfg.
func loadEvents(getenv func(string) string, cfg *Config) error {
	cfg.EndpointFailingAfter = events.DefaultFailingAfter
	if v := getenv(events.EnvURL); v != "" {
		if _, err := events.ParseURL(v); err != nil {
			return err
		}
		cfg.EventsURL = v
	}
	if v := getenv(events.EnvFailingAfter); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s=%q is not a positive duration such as 10m", events.EnvFailingAfter, v)
		}
		cfg.EndpointFailingAfter = d
	}
	return nil
}

// eventsOutbox is the outbox the Deliver activity records events in, nil
// when cfg sends none.
func eventsOutbox(cfg Config, rdb redis.UniversalClient) *events.Outbox {
	if cfg.EventsURL == "" {
		return nil
	}
	return events.NewOutbox(rdb, cfg.EndpointFailingAfter)
}

// StartEvents runs the dispatcher that POSTs the outbox's events to
// cfg.EventsURL until ctx is done or the returned stop is called (which
// waits for it). It does nothing when cfg sends no events.
func StartEvents(ctx context.Context, cfg Config, rdb redis.UniversalClient, logger *slog.Logger) (stop func(), err error) {
	if cfg.EventsURL == "" {
		return func() {}, nil
	}
	d, err := events.NewDispatcher(rdb, cfg.EventsURL, cfg.WebhookSecret, egress.Guard{Allow: cfg.EgressAllow})
	if err != nil {
		return nil, err
	}
	if logger != nil {
		d.Logger = logger
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { d.Run(ctx) })
	return func() { cancel(); wg.Wait() }, nil
}
