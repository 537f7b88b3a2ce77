package main

import (
	"context"
	"time"

	"github.com/onceflow/onceflow/tracing"
)

// traceFlushTimeout bounds how long a command waits, as it exits, for its
// last spans to reach the collector: a collector that is down must not
// hold up a `send` or a worker's shutdown for long.
const traceFlushTimeout = 5 * time.Second

// startTracing turns tracing on when the OTEL_* variables say so (see
// tracing.Enabled) and returns what flushes it; a variable with a value
// Onceflow cannot use is an inputError.
func (a *app) startTracing(ctx context.Context) (func(), error) {
	t, err := tracing.FromEnv(ctx, a.getenv)
	if err != nil {
		return nil, inputError{err}
	}
	a.tracing = t
	return func() {
		flushCtx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
		defer cancel()
		if err := t.Shutdown(flushCtx); err != nil {
			a.logger.Warn("Traces were not all exported", "error", err)
		}
	}, nil
}
