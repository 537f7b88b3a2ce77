package devstack_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
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
// workflow to its one no-op activity running, on the same server. Each is
// started two ways, and each Onceflow row compares with the minimal row
// started the same way: from a client in the workers' process, which gets
// Temporal's eager start (onceflow dev's API), and from a client in
// another process, which does not (onceflow send, an app). Each iteration
// is one workflow; p50 and p99 are reported in ms, and load1 is the
// machine's one-minute load average when the row started (a figure taken
// on a busy machine says so).
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
	remote := dialRemote(b, s)
	defer remote.Close()
	for _, from := range starts(s.Client, remote) {
		b.Run("minimal-workflow-"+from.name, func(b *testing.B) {
			defer reportLoad(b, loadAverage())
			var run client.WorkflowRun
			measure(b, func(i int) {
				var err error
				run, err = from.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
					ID: fmt.Sprintf("minimal-%s-%d-%d", from.name, b.N, i), TaskQueue: minimalQueue, EnableEagerStart: from.eager,
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
		name := "onceflow-webhook-" + from.name
		c := starter.New(from.client, "")
		b.Run(name, func(b *testing.B) {
			defer reportLoad(b, loadAverage())
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

// startedFrom is one way of starting workflows: a client and whether it
// may ask for Temporal's eager start (only a client in the process of a
// worker polling the task queue gets it; starter.Client always asks).
type startedFrom struct {
	name   string
	client client.Client
	eager  bool
}

// starts are the two ways the benchmarks start workflows, in the order
// they run.
func starts(sameProcess, otherProcess client.Client) []startedFrom {
	return []startedFrom{
		{name: "same-process", client: sameProcess, eager: true},
		{name: "other-process", client: otherProcess, eager: false},
	}
}

// dialRemote is a client of the stack's Temporal server with no worker in
// its process, as an app or `onceflow send` has.
func dialRemote(b *testing.B, s *devstack.Stack) client.Client {
	remote, err := client.Dial(client.Options{HostPort: s.TemporalAddress, Namespace: devstack.Namespace})
	if err != nil {
		b.Fatal(err)
	}
	return remote
}

// loadAverage is the machine's one-minute load average, or -1 where it
// cannot be read (not Linux).
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// reportLoad reports, as load1, the load average a row started at (read
// it before the row, report it after: ResetTimer drops metrics reported
// before it), so that a figure taken on a busy machine shows it.
func reportLoad(b *testing.B, load float64) {
	if load >= 0 {
		b.ReportMetric(load, "load1")
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
