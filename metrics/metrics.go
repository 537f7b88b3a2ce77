// Package metrics owns what Onceflow exports to Prometheus: one registry
// per process holding the Temporal SDK's own metrics (through SDKHandler,
// the client's metrics handler), Onceflow's delivery metrics (emitted by
// the workflow and the activities through that same handler, so that a
// workflow's replay counts nothing twice) and the HTTP API's request
// metrics (Instrument). Handler serves them in the text format.
//
// Labels carry only bounded, non-personal values: channel, status, outcome
// class, dedup operation, the API's route pattern and status code. An
// Onceflow metric keeps only the labels declared for it here, so that a
// tag added on the way (the SDK adds namespace, task queue and workflow
// type) can never turn a key or a recipient into a label.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow"
)

// Names of Onceflow's metrics as the code emits them through the SDK's
// metrics handler; the exported names add _total (counters) or _seconds
// (timers).
const (
	deliveries      = "onceflow_deliveries"
	ambiguousClaims = "onceflow_ambiguous_claims"
	providerRequest = "onceflow_provider_request_duration"
	dedupOperation  = "onceflow_dedup_operation_duration"
	rateLimitWait   = "onceflow_ratelimit_wait_duration"
	rateLimitDefer  = "onceflow_ratelimit_deferrals"
)

// Provider request outcome classes (the outcome label).
const (
	// OutcomeOK: the provider accepted the message.
	OutcomeOK = "ok"
	// OutcomeRejected: the provider refused it permanently.
	OutcomeRejected = "rejected"
	// OutcomeRetryable: the request failed before the provider could act.
	OutcomeRetryable = "retryable"
	// OutcomeMaybeSent: the request failed in a way the provider may have
	// acted on (a timeout, a 5xx).
	OutcomeMaybeSent = "maybe_sent"
)

// Dedup operations (the op label).
const (
	OpClaim  = "claim"
	OpCommit = "commit"
)

// finalStatuses are the statuses onceflow_deliveries_total counts.
var finalStatuses = []onceflow.Status{onceflow.Delivered, onceflow.Suppressed, onceflow.Failed, onceflow.Ambiguous, onceflow.Cancelled, onceflow.Skipped}

// Buckets, in seconds. Providers answer in tens of milliseconds to tens of
// seconds (an attempt's timeout); Redis in well under a millisecond to a
// few when it fsyncs or waits for replicas; a rate-limit slot up to half an
// attempt away.
var (
	providerBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	dedupBuckets    = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	waitBuckets     = []float64{.001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	apiBuckets      = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	sdkBuckets      = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
)

// Registry holds one process's metrics.
type Registry struct {
	reg *prometheus.Registry
	// own are Onceflow's metrics emitted through the SDK's handler, by
	// emitted name.
	own         map[string]family
	apiRequests *prometheus.CounterVec
	apiDuration *prometheus.HistogramVec
	sdk         *sdkMetrics
}

// family is one of Onceflow's metrics and the labels it keeps.
type family struct {
	labels    []string
	counter   *prometheus.CounterVec
	histogram *prometheus.HistogramVec
}

// New returns a registry with Onceflow's metrics, the Go runtime's and the
// process's. Every channel's delivery counters start at zero, so that a
// rate or an alert sees the first ambiguous delivery too.
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), own: map[string]family{}}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.counter(deliveries, "Deliveries by channel and final status (delivered, suppressed, failed, ambiguous, cancelled, skipped), counted once when each settles.", "channel", "status")
	r.counter(ambiguousClaims, "Claims that found an earlier attempt may have sent the delivery (the attempt then holds, asks the provider, or re-sends with the same idempotency key).", "channel")
	r.histogram(providerRequest, "Duration of provider send requests by channel and outcome class (ok, rejected, retryable, maybe_sent).", providerBuckets, "channel", "outcome")
	r.histogram(dedupOperation, "Duration of dedup store operations (claim, commit) against Redis, failed ones included.", dedupBuckets, "op")
	r.histogram(rateLimitWait, "Time deliveries waited for a send slot of a rate-capped channel.", waitBuckets, "channel")
	r.counter(rateLimitDefer, "Attempts that found no send slot within half their time and were retried later, having sent nothing.", "channel")
	for _, ch := range onceflow.Channels {
		for _, s := range finalStatuses {
			r.own[deliveries].counter.WithLabelValues(string(ch), string(s))
		}
		r.own[ambiguousClaims].counter.WithLabelValues(string(ch))
	}
	r.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "onceflow_api_requests_total",
		Help: "HTTP API requests by route pattern (not path: keys never become labels) and status code.",
	}, []string{"route", "code"})
	r.apiDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "onceflow_api_request_duration_seconds", Help: "HTTP API request duration by route pattern.", Buckets: apiBuckets,
	}, []string{"route"})
	r.reg.MustRegister(r.apiRequests, r.apiDuration)
	r.sdk = &sdkMetrics{reg: r.reg, families: map[string]*sdkFamily{}}
	return r
}

func (r *Registry) counter(name, help string, labels ...string) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name + "_total", Help: help}, labels)
	r.reg.MustRegister(c)
	r.own[name] = family{labels: labels, counter: c}
}

func (r *Registry) histogram(name, help string, buckets []float64, labels ...string) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name + "_seconds", Help: help, Buckets: buckets}, labels)
	r.reg.MustRegister(h)
	r.own[name] = family{labels: labels, histogram: h}
}

// Handler serves the registry in the Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// Delivery counts one delivery step's final status on h, the workflow's
// (replay-safe) metrics handler.
func Delivery(h client.MetricsHandler, ch onceflow.Channel, s onceflow.Status) {
	Deliveries(h, ch, s, 1)
}

// Deliveries counts n deliveries of a broadcast that settled with status s;
// n of zero counts nothing.
func Deliveries(h client.MetricsHandler, ch onceflow.Channel, s onceflow.Status, n int) {
	if n > 0 {
		h.WithTags(map[string]string{"channel": string(ch), "status": string(s)}).Counter(deliveries).Inc(int64(n))
	}
}

// AmbiguousClaim counts a claim that found a possible earlier send.
func AmbiguousClaim(h client.MetricsHandler, ch onceflow.Channel) {
	h.WithTags(map[string]string{"channel": string(ch)}).Counter(ambiguousClaims).Inc(1)
}

// ProviderRequest records one provider request's duration and outcome
// class.
func ProviderRequest(h client.MetricsHandler, ch onceflow.Channel, outcome string, d time.Duration) {
	h.WithTags(map[string]string{"channel": string(ch), "outcome": outcome}).Timer(providerRequest).Record(d)
}

// DedupOperation records one dedup store operation's duration.
func DedupOperation(h client.MetricsHandler, op string, d time.Duration) {
	h.WithTags(map[string]string{"op": op}).Timer(dedupOperation).Record(d)
}

// RateLimitWait records the wait for a send slot of channel ch.
func RateLimitWait(h client.MetricsHandler, ch onceflow.Channel, d time.Duration) {
	h.WithTags(map[string]string{"channel": string(ch)}).Timer(rateLimitWait).Record(d)
}

// RateLimitDeferral counts an attempt that found no send slot soon enough.
func RateLimitDeferral(h client.MetricsHandler, ch onceflow.Channel) {
	h.WithTags(map[string]string{"channel": string(ch)}).Counter(rateLimitDefer).Inc(1)
}
