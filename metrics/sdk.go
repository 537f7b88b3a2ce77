package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// SDKHandler is the metrics handler to put in the Temporal client's
// options (client.Options.MetricsHandler): the SDK's own metrics and
// Onceflow's, which the workflow and the activities emit through it, land
// in r.
//
// Temporal's samples export SDK metrics through go.temporal.io/sdk/contrib/tally
// and tally's Prometheus reporter; that module is not on the module proxy
// this project builds from, and the OpenTelemetry route would move the
// otel Prometheus exporter that the Temporal server packages compile
// against. This adapter writes straight to prometheus/client_golang, the
// client the Prometheus project maintains, which is already in the module
// graph: counters get _total, timers become histograms in seconds.
func (r *Registry) SDKHandler() client.MetricsHandler {
	return handler{r: r}
}

// handler is a client.MetricsHandler with its tags.
type handler struct {
	r    *Registry
	tags map[string]string
}

func (h handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	return handler{r: h.r, tags: merged}
}

func (h handler) Counter(name string) client.MetricsCounter {
	if f, ok := h.r.own[name]; ok && f.counter != nil {
		c := f.counter.With(f.values(h.tags))
		return client.MetricsCounter(counterFunc(func(n int64) { c.Add(float64(n)) }))
	}
	c := h.r.sdk.family(name+"_total", h.tags, kindCounter).counter.With(h.r.sdk.values(name+"_total", h.tags))
	return counterFunc(func(n int64) { c.Add(float64(n)) })
}

func (h handler) Gauge(name string) client.MetricsGauge {
	g := h.r.sdk.family(name, h.tags, kindGauge).gauge.With(h.r.sdk.values(name, h.tags))
	return gaugeFunc(g.Set)
}

func (h handler) Timer(name string) client.MetricsTimer {
	if f, ok := h.r.own[name]; ok && f.histogram != nil {
		o := f.histogram.With(f.values(h.tags))
		return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
	}
	o := h.r.sdk.family(name+"_seconds", h.tags, kindHistogram).histogram.With(h.r.sdk.values(name+"_seconds", h.tags))
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

// counterFunc adds to a counter; a negative increment, which a counter
// cannot take, is dropped.
type counterFunc func(int64)

func (f counterFunc) Inc(n int64) {
	if n > 0 {
		f(n)
	}
}

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

// values are f's label values from tags: undeclared tags are dropped.
func (f family) values(tags map[string]string) prometheus.Labels {
	l := make(prometheus.Labels, len(f.labels))
	for _, k := range f.labels {
		l[k] = tags[k]
	}
	return l
}

type kind int

const (
	kindCounter kind = iota
	kindGauge
	kindHistogram
)

// sdkMetrics are the SDK's metrics, registered as they first appear.
type sdkMetrics struct {
	reg      *prometheus.Registry
	mu       sync.Mutex
	families map[string]*sdkFamily
}

type sdkFamily struct {
	labels    []string
	counter   *prometheus.CounterVec
	gauge     *prometheus.GaugeVec
	histogram *prometheus.HistogramVec
}

// family returns the metric called name, registering it with the
// (sanitized) keys of tags as its labels the first time. Prometheus fixes a
// metric's labels once; a later emission with other tags keeps the first
// labels (values() fills the missing ones with "").
func (s *sdkMetrics) family(name string, tags map[string]string, k kind) *sdkFamily {
	name = sanitize(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.families[name]; ok {
		return f
	}
	labels := make([]string, 0, len(tags))
	for key := range tags {
		labels = append(labels, sanitize(key))
	}
	slices.Sort(labels)
	labels = slices.Compact(labels)
	help := "Temporal SDK metric " + name + "."
	f := &sdkFamily{labels: labels}
	var c prometheus.Collector
	switch k {
	case kindCounter:
		f.counter = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		c = f.counter
	case kindGauge:
		f.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		c = f.gauge
	default:
		f.histogram = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: sdkBuckets}, labels)
		c = f.histogram
	}
	if err := s.reg.Register(c); err != nil {
		// Only a name clash with another kind gets here; such a metric
		// is counted nowhere rather than crash a worker.
		f = &sdkFamily{labels: labels,
			counter:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels),
			gauge:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels),
			histogram: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: sdkBuckets}, labels)}
	}
	s.families[name] = f
	return f
}

// values are the label values of the SDK metric name from tags.
func (s *sdkMetrics) values(name string, tags map[string]string) prometheus.Labels {
	name = sanitize(name)
	s.mu.Lock()
	f := s.families[name]
	s.mu.Unlock()
	byLabel := make(map[string]string, len(tags))
	for k, v := range tags {
		byLabel[sanitize(k)] = v
	}
	l := make(prometheus.Labels, len(f.labels))
	for _, k := range f.labels {
		l[k] = byLabel[k]
	}
	return l
}

// sanitize makes s a valid Prometheus metric or label name.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			b[i] = '_'
		}
	}
	return strings.Clone(string(b))
}
