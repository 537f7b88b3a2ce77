package metrics_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/metrics"
)

// TestAlertRulesAreValidAndFire checks docs/prometheus/alerts.yml with
// promtool and runs its unit tests (alerts_test.yml): each alert fires on
// the series it is about and stays quiet on the others.
func TestAlertRulesAreValidAndFire(t *testing.T) {
	testenv.Promtool(t, nil, "check", "rules", "../docs/prometheus/alerts.yml")
	testenv.Promtool(t, nil, "test", "rules", "../docs/prometheus/alerts_test.yml")
}

// TestDocsNameOnlyExportedMetrics checks that every Onceflow metric the
// dashboard and the alerts query is one the registry exports, so that a
// renamed metric cannot leave an empty panel or a silent alert behind.
func TestDocsNameOnlyExportedMetrics(t *testing.T) {
	// Histograms and the API's counter have series only once something
	// happened: make everything happen once.
	r := metrics.New()
	h := r.SDKHandler()
	metrics.ProviderRequest(h, onceflow.Webhook, metrics.OutcomeOK, time.Millisecond)
	metrics.DedupOperation(h, metrics.OpCommit, time.Millisecond)
	metrics.RateLimitWait(h, onceflow.SMS, time.Millisecond)
	metrics.RateLimitDeferral(h, onceflow.SMS)
	r.Instrument(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	exported := scrape(t, r)
	dashboard, err := os.ReadFile("../docs/grafana/onceflow.json")
	require.NoError(t, err)
	var d struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(dashboard, &d), "the dashboard is JSON")
	require.NotEmpty(t, d.Panels)
	alerts, err := os.ReadFile("../docs/prometheus/alerts.yml")
	require.NoError(t, err)
	doc, err := os.ReadFile("../docs/metrics.md")
	require.NoError(t, err)
	name := regexp.MustCompile(`onceflow_[a-z_]+`)
	for _, src := range []string{string(dashboard), string(alerts), string(doc)} {
		for _, n := range name.FindAllString(src, -1) {
			base := n
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				base = strings.TrimSuffix(base, suffix)
			}
			assert.Contains(t, exported, "# TYPE "+base+" ", "%s is queried or documented but not exported", n)
		}
	}
}
