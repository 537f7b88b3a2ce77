package main

import (
	"context"
	"net/http"

	"github.com/onceflow/onceflow/metrics"
)

// EnvMetricsAddr names the variable with the address `onceflow worker` and
// `onceflow api` serve /metrics on; unset, they serve none. Metrics carry
// no personal data (no keys, recipients or tokens), so a public address is
// allowed: restrict who reaches it as for any Prometheus target.
const EnvMetricsAddr = "ONCEFLOW_METRICS_ADDR"

// serveMetrics serves /metrics on ONCEFLOW_METRICS_ADDR until ctx is done
// (the command's: a command that returns early cancels it),
// and makes the clients a.dial connects report the Temporal SDK's metrics
// there. It returns nil, serving nothing, when the variable is unset.
func (a *app) serveMetrics(ctx context.Context) (*metrics.Registry, error) {
	addr := a.getenv(EnvMetricsAddr)
	if addr == "" {
		return nil, nil
	}
	reg := metrics.New()
	bound, err := reg.Listen(ctx, addr, a.logger)
	if err != nil {
		return nil, inputErrorf("%s: %v", EnvMetricsAddr, err)
	}
	a.metrics = reg
	a.logger.Info("Metrics listening", "url", "http://"+bound.String()+"/metrics")
	return reg, nil
}

// instrument counts the API's requests in reg, when metrics are served.
func instrument(reg *metrics.Registry, h http.Handler) http.Handler {
	if reg == nil {
		return h
	}
	return reg.Instrument(h)
}
