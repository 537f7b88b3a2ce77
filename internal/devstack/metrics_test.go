package devstack_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/internal/devstack"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/workflows"
)

// scrape is one GET /metrics of the stack: the text, and its samples.
type scrape struct {
	text string
	fams map[string]*dto.MetricFamily
}

func scrapeMetrics(t *testing.T, apiURL string) scrape {
	t.Helper()
	resp, err := http.Get(apiURL + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	require.NoError(t, err)
	return scrape{text: string(b), fams: fams}
}

// value is the counter's value, or the histogram's count, of the series of
// name with labels; 0 when it does not exist.
func (s scrape) value(name string, labels map[string]string) float64 {
	f, ok := s.fams[name]
	if !ok {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// metricsStack starts a dev stack with one worker and no Web UI, stopped
// when t ends.
func metricsStack(t *testing.T) *devstack.Stack {
	var logs testenv.Buffer
	cfg := config(t, t.TempDir(), &logs)
	cfg.UIPort, cfg.Workers = 0, 1
	s := start(t, cfg)
	t.Cleanup(s.Stop)
	return s
}

func TestDevStackMetricsMoveWithRealDeliveries(t *testing.T) {
	s := metricsStack(t)
	ok := testenv.NewReceiver(t)
	refusing := testenv.NewReceiver(t, testenv.Statuses(http.StatusBadRequest))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	before := scrapeMetrics(t, s.APIURL)
	post(t, s.APIURL, "metrics-delivered", ok.URL)
	post(t, s.APIURL, "metrics-refused", refusing.URL)
	c := starter.New(s.Client, "")
	res, err := c.Wait(ctx, "metrics-delivered")
	require.NoError(t, err)
	require.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
	res, err = c.Wait(ctx, "metrics-refused")
	require.NoError(t, err)
	require.Equal(t, onceflow.Failed, res.Deliveries[0].Status)
	// A new run of a delivered key finds its dedup record: suppressed.
	require.Equal(t, onceflow.Suppressed, newRun(ctx, t, s, "metrics-delivered", ok.URL).Deliveries[0].Status)
	// A broadcast counts each recipient: two delivered, one refused.
	ropts, err := redis.ParseURL(s.RedisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(ropts)
	defer func() { _ = rdb.Close() }()
	bc := onceflow.Broadcast{Key: "metrics-broadcast", Channel: onceflow.Webhook, Body: "Sale", Recipients: []onceflow.Recipient{
		{ID: "u1", To: ok.URL + "/u1"}, {ID: "u2", To: ok.URL + "/u2"}, {ID: "u3", To: refusing.URL + "/u3"},
	}}
	bcc := broadcast.NewClient(starter.New(s.Client, ""), recipients.New(rdb), time.Hour)
	_, err = bcc.Send(ctx, bc)
	require.NoError(t, err)
	st, err := bcc.Wait(ctx, bc.Key, 50*time.Millisecond, nil)
	require.NoError(t, err)
	require.Equal(t, 2, st.Delivered, st.Progress())
	require.Equal(t, 1, st.Failed, st.Progress())

	after := scrapeMetrics(t, s.APIURL)
	moved := func(name string, labels map[string]string) float64 {
		return after.value(name, labels) - before.value(name, labels)
	}
	webhook := func(status string) map[string]string {
		return map[string]string{"channel": "webhook", "status": status}
	}
	assert.Equal(t, 3.0, moved("onceflow_deliveries_total", webhook("delivered")), "one notification, two broadcast recipients")
	assert.Equal(t, 2.0, moved("onceflow_deliveries_total", webhook("failed")), "one notification, one broadcast recipient")
	assert.Equal(t, 1.0, moved("onceflow_deliveries_total", webhook("suppressed")))
	assert.Equal(t, 0.0, moved("onceflow_deliveries_total", webhook("ambiguous")))
	assert.Equal(t, 0.0, after.value("onceflow_deliveries_total", webhook("ambiguous")), "the series exists at zero")
	assert.Contains(t, after.text, `onceflow_deliveries_total{channel="webhook",status="ambiguous"} 0`)
	assert.Equal(t, 3.0, moved("onceflow_provider_request_duration_seconds", map[string]string{"channel": "webhook", "outcome": "ok"}))
	assert.Equal(t, 2.0, moved("onceflow_provider_request_duration_seconds", map[string]string{"channel": "webhook", "outcome": "rejected"}))
	assert.Equal(t, 6.0, moved("onceflow_dedup_operation_duration_seconds", map[string]string{"op": "claim"}), "one claim per attempt")
	assert.Equal(t, 3.0, moved("onceflow_dedup_operation_duration_seconds", map[string]string{"op": "commit"}), "only the delivered ones commit")
	assert.Equal(t, 2.0, moved("onceflow_api_requests_total", map[string]string{"route": "POST /v1/notifications", "code": "202"}))
	assert.Positive(t, after.value("temporal_workflow_completed_total", nil), "the Temporal SDK's own metrics are exported")

	// No key and no recipient in any label.
	for _, secret := range []string{"metrics-delivered", "metrics-refused", "metrics-broadcast", ok.URL, refusing.URL} {
		assert.NotContains(t, after.text, secret)
	}
	testenv.Promtool(t, []byte(after.text), "check", "metrics")
}

// TestDevStackCountsADeliveryOnceAcrossReplays drops the worker's cached
// workflow between a notification's two deliveries, so that the worker
// rebuilds it by replaying its history, the first delivery's settlement
// included: that delivery must still count once.
func TestDevStackCountsADeliveryOnceAcrossReplays(t *testing.T) {
	s := metricsStack(t)
	ok := testenv.NewReceiver(t)
	release := make(chan struct{})
	held := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer held.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	before := scrapeMetrics(t, s.APIURL)
	postJSON(t, s.APIURL, "metrics-replay", `{"body":"hi","deliveries":[{"channel":"webhook","to":"`+ok.URL+`"},{"channel":"webhook","to":"`+held.URL+`"}]}`)
	// Once a workflow task has completed after the first delivery's
	// activity, the workflow has settled (and counted) it.
	require.Eventually(t, func() bool {
		it := s.Client.GetWorkflowHistory(ctx, workflows.ID("metrics-replay"), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		activityDone := false
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				return false
			}
			switch e.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				activityDone = true
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				if activityDone {
					return true
				}
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond)
	sdkworker.PurgeStickyWorkflowCache()
	close(release)
	res, err := starter.New(s.Client, "").Wait(ctx, "metrics-replay")
	require.NoError(t, err)
	require.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
	require.Equal(t, onceflow.Delivered, res.Deliveries[1].Status)

	after := scrapeMetrics(t, s.APIURL)
	assert.Positive(t, after.value("temporal_sticky_cache_miss_total", nil)-before.value("temporal_sticky_cache_miss_total", nil),
		"the worker replayed the workflow")
	delivered := map[string]string{"channel": "webhook", "status": "delivered"}
	assert.Equal(t, 2.0, after.value("onceflow_deliveries_total", delivered)-before.value("onceflow_deliveries_total", delivered),
		"two deliveries, each counted once although the first one's settlement was replayed")
}
