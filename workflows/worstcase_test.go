package workflows_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
)

// Temporal's history limits (the server's defaults): a workflow is
// terminated at 50,000 events or 50 MB, and warned about at 10,240 events
// or 10 MB.
const (
	warnEvents = 10 * 1024
	warnBytes  = 10 << 20
)

// TestWorstCaseHistoryStaysInsideTemporalsLimits runs the largest
// notification Validate accepts, 50 deliveries with 5 fallbacks each and
// the largest content onceflow.MaxContentBytes allows them (a 27 KiB body
// and subject; with a 64 KiB body the history was 19.5 MiB, past
// Temporal's warning), where every one of the 300 steps is refused
// for good, so that every step runs. Its history stays below Temporal's
// warning limits; docs/limits.md records the figures this prints.
func TestWorstCaseHistoryStaysInsideTemporalsLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("300 activities: not in the quick loop")
	}
	var hits atomic.Int64
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "no such hook", http.StatusNotFound)
	}))
	t.Cleanup(refuse.Close)
	// Attempts get room: 50 deliveries at once on a loaded machine must
	// not time out, which would make them ambiguous and not failed.
	policy := fastPolicy
	policy.AttemptTimeout, policy.GiveUpAfter = 30*time.Second, time.Minute
	tc, queue := startWorker(t, policy, nil)

	n := onceflow.Notification{Key: "worst-case-1", Subject: strings.Repeat("s", onceflow.MaxSubjectLength)}
	for i := range onceflow.MaxDeliveries {
		d := onceflow.Delivery{Channel: onceflow.Webhook, To: fmt.Sprintf("%s/d%02d", refuse.URL, i)}
		for j := range onceflow.MaxFallbacks {
			d.Fallback = append(d.Fallback, onceflow.Delivery{Channel: onceflow.Webhook, To: fmt.Sprintf("%s/d%02d/f%d", refuse.URL, i, j)})
		}
		n.Deliveries = append(n.Deliveries, d)
	}
	// The largest content Validate accepts for 300 steps.
	n.Body = strings.Repeat("b", onceflow.MaxContentBytes/n.Steps()-len(n.Subject))
	require.NoError(t, n.Validate())
	over := n
	over.Body += "b"
	require.Error(t, over.Validate())
	run := start(t, tc, queue, n)
	var res onceflow.Result
	require.NoError(t, run.Get(ctxFor(t), &res))
	require.Len(t, res.Deliveries, onceflow.MaxDeliveries)
	for _, d := range res.Deliveries {
		assert.Equal(t, onceflow.Failed, d.Status, "%+v", d)
	}
	assert.EqualValues(t, onceflow.MaxDeliveries*(1+onceflow.MaxFallbacks), hits.Load(), "every step ran once")

	desc, err := tc.DescribeWorkflowExecution(ctxFor(t), run.GetID(), run.GetRunID())
	require.NoError(t, err)
	events, size := desc.WorkflowExecutionInfo.HistoryLength, desc.WorkflowExecutionInfo.HistorySizeBytes
	t.Logf("worst case: %d steps, body %d bytes: %d history events, %d bytes (%.1f MiB)",
		onceflow.MaxDeliveries*(1+onceflow.MaxFallbacks), len(n.Body), events, size, float64(size)/(1<<20))
	assert.Equal(t, int64(len(history(t, tc, run).Events)), events)
	assert.Less(t, events, int64(warnEvents))
	assert.Less(t, size, int64(warnBytes))
}
