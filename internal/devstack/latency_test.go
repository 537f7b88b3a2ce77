package devstack_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/devstack"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/starter"
)

// BenchmarkLatency measures, one notification at a time on the dev stack's
// embedded server, the time from starting a notification to the webhook
// receiver seeing its request, next to the time from starting a minimal
// workflow to its one no-op activity running, on the same server. Each
// iteration is one notification; p50 and p99 are reported in ms.
//
//	go test -run '^$' -bench Latency -benchtime 200x ./internal/devstack
func BenchmarkLatency(b *testing.B) {
	var logs testenv.Buffer
	cfg := config(b, b.TempDir(), &logs)
	cfg.UIPort, cfg.APIAddr, cfg.Workers = 0, "", 1
	s := start(b, cfg)
	defer s.Stop()

	seen := make(chan struct{}, 1)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- struct{}{}
	}))
	defer rcv.Close()

	// The minimal workflow runs on its own task queue and worker.
	const minimalQueue = "latency-minimal"
	ran := make(chan struct{}, 1)
	noop := func(context.Context) error { ran <- struct{}{}; return nil }
	w := newBenchWorker(s.Client, minimalQueue, minimalWorkflow, noop)
	defer w.Stop()

	ctx := context.Background()
	b.Run("minimal-workflow", func(b *testing.B) {
		var run client.WorkflowRun
		measure(b, func(i int) {
			var err error
			run, err = s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: fmt.Sprintf("minimal-%d-%d", b.N, i), TaskQueue: minimalQueue, EnableEagerStart: true,
			}, "Minimal")
			if err != nil {
				b.Fatal(err)
			}
			<-ran
		}, func(int) {
			if err := run.Get(ctx, nil); err != nil {
				b.Fatal(err)
			}
		})
	})
	// A client in the workers' process (onceflow dev's API) gets eager
	// starts; one in another process (onceflow send, an app) does not.
	remote, err := client.Dial(client.Options{HostPort: s.TemporalAddress, Namespace: devstack.Namespace})
	if err != nil {
		b.Fatal(err)
	}
	defer remote.Close()
	for name, c := range map[string]*starter.Client{
		"onceflow-webhook-same-process":  starter.New(s.Client, ""),
		"onceflow-webhook-other-process": starter.New(remote, ""),
	} {
		b.Run(name, func(b *testing.B) {
			var started starter.Started
			measure(b, func(i int) {
				var err error
				started, err = c.Send(ctx, onceflow.Notification{
					Key:        fmt.Sprintf("%s-%d-%d", name, b.N, i),
					Body:       "latency probe",
					Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL}},
				})
				if err != nil {
					b.Fatal(err)
				}
				<-seen
			}, func(int) {
				if _, err := c.WaitRun(ctx, started); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// measure times step(i) per iteration, then lets the workflow finish
// (settle, untimed) so that each runs alone, and reports p50 and p99.
func measure(b *testing.B, step func(i int), settle func(i int)) {
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		step(i)
		took = append(took, time.Since(t0))
		settle(i)
	}
	b.StopTimer()
	slices.Sort(took)
	pct := func(p float64) float64 {
		return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// minimalWorkflow is the yardstick: one no-op activity.
func minimalWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	return workflow.ExecuteActivity(ctx, "Noop").Get(ctx, nil)
}

func newBenchWorker(c client.Client, queue string, wf func(workflow.Context) error, act func(context.Context) error) worker.Worker {
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: "Minimal"})
	w.RegisterActivityWithOptions(act, activity.RegisterOptions{Name: "Noop"})
	if err := w.Start(); err != nil {
		panic(err)
	}
	return w
}
