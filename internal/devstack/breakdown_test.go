package devstack_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/starter"
)

// BenchmarkLatencyBreakdown splits one-at-a-time latency into its steps,
// for the minimal workflow and a single-webhook notification, each started
// in the workers' process (eager start) and from another process. Every
// iteration starts one workflow, notes when its activity reaches its side
// effect (the no-op running, the receiver seeing the request), waits for
// the run, and reads the step times from its history; each step's median
// is reported in ms:
//
//	start       the client's start call to WorkflowExecutionStarted
//	to-task     WorkflowExecutionStarted to the first WorkflowTaskStarted
//	tasks       the first WorkflowTaskStarted to the activity's
//	            ActivityTaskScheduled (every workflow task before it)
//	to-worker   ActivityTaskScheduled to ActivityTaskStarted
//	in-activity ActivityTaskStarted to the side effect
//	total       the start call to the side effect
//
// plus the run's history events and workflow tasks. The clocks are one
// machine's: client, server, worker and receiver share it.
//
//	go test -run '^$' -bench LatencyBreakdown -benchtime 100x ./internal/devstack
func BenchmarkLatencyBreakdown(b *testing.B) {
	var logs testenv.Buffer
	cfg := config(b, b.TempDir(), &logs)
	cfg.UIPort, cfg.APIAddr, cfg.Workers = 0, "", 1
	s := start(b, cfg)
	defer s.Stop()

	sent := make(chan time.Time, 1)
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { sent <- time.Now() }))
	defer rcv.Close()
	const minimalQueue = "breakdown-minimal"
	w := newBenchWorker(s.Client, minimalQueue, minimalWorkflow, func(context.Context) error { sent <- time.Now(); return nil })
	defer w.Stop()

	ctx := context.Background()
	remote := dialRemote(b, s)
	defer remote.Close()
	for _, from := range starts(s.Client, remote) {
		c := starter.New(from.client, "")
		rows := []struct {
			kind  string
			start func(id string) (workflowID, runID string, err error)
			wait  func(workflowID, runID string) error
		}{
			{"minimal-workflow", func(id string) (string, string, error) {
				r, err := from.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: minimalQueue, EnableEagerStart: from.eager}, "Minimal")
				if err != nil {
					return "", "", err
				}
				return r.GetID(), r.GetRunID(), nil
			}, func(id, run string) error { return from.client.GetWorkflow(ctx, id, run).Get(ctx, nil) }},
			{"onceflow-webhook", func(id string) (string, string, error) {
				st, err := c.Send(ctx, onceflow.Notification{Key: id, Body: "breakdown probe",
					Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL}}})
				return st.WorkflowID, st.RunID, err
			}, func(id, run string) error {
				_, err := c.WaitRun(ctx, starter.Started{WorkflowID: id, RunID: run})
				return err
			}},
		}
		for _, row := range rows {
			name := row.kind + "-" + from.name
			b.Run(name, func(b *testing.B) {
				defer reportLoad(b, loadAverage())
				steps := map[string][]float64{}
				var events, tasks []float64
				for i := range b.N {
					t0 := time.Now()
					id, run, err := row.start(fmt.Sprintf("breakdown-%s-%d-%d", name, b.N, i))
					if err != nil {
						b.Fatal(err)
					}
					effect := <-sent
					if err := row.wait(id, run); err != nil {
						b.Fatal(err)
					}
					h := history(b, from.client, id, run)
					for step, d := range breakdown(b, h, t0, effect) {
						steps[step] = append(steps[step], float64(d.Microseconds())/1000)
					}
					events = append(events, float64(len(h)))
					tasks = append(tasks, float64(countEvents(h, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED)))
				}
				for step, v := range steps {
					b.ReportMetric(median(v), step+"-ms")
				}
				b.ReportMetric(median(events), "history-events")
				b.ReportMetric(median(tasks), "workflow-tasks")
			})
		}
	}
}

func history(b *testing.B, c client.Client, id, run string) []*historypb.HistoryEvent {
	var out []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(context.Background(), id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// breakdown reads the step times of one run's history (see
// BenchmarkLatencyBreakdown) from the start call at t0 to its side effect.
func breakdown(b *testing.B, h []*historypb.HistoryEvent, t0, effect time.Time) map[string]time.Duration {
	first := func(t enumspb.EventType) time.Time {
		for _, e := range h {
			if e.GetEventType() == t {
				return e.GetEventTime().AsTime()
			}
		}
		b.Fatalf("no %s event in the history", t)
		return time.Time{}
	}
	started := first(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
	task := first(enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED)
	scheduled := first(enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
	running := first(enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED)
	return map[string]time.Duration{
		"start":       started.Sub(t0),
		"to-task":     task.Sub(started),
		"tasks":       scheduled.Sub(task),
		"to-worker":   running.Sub(scheduled),
		"in-activity": effect.Sub(running),
		"total":       effect.Sub(t0),
	}
}

func countEvents(h []*historypb.HistoryEvent, t enumspb.EventType) int {
	n := 0
	for _, e := range h {
		if e.GetEventType() == t {
			n++
		}
	}
	return n
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
