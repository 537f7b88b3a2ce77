package devstack_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/devstack"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/workflows"
)

// BenchmarkThroughput measures, on one embedded Temporal server and one
// redis-server, single-webhook notifications end to end next to a minimal
// workflow with one no-op activity, at 1, 16 and 64 in flight, each started
// from a client in the workers' process (eager start) and from one in
// another process; each Onceflow row compares with the minimal row started
// the same way. Each iteration is one workflow started and waited for; the
// metric is completed workflows per second, and load1 the machine's
// one-minute load average when the row started.
//
//	go test -run '^$' -bench Throughput -benchtime 400x ./internal/devstack
func BenchmarkThroughput(b *testing.B) {
	var logs testenv.Buffer
	cfg := config(b, b.TempDir(), &logs)
	cfg.UIPort, cfg.APIAddr, cfg.Workers = 0, "", 1
	s := start(b, cfg)
	defer s.Stop()
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer rcv.Close()

	const minimalQueue = "throughput-minimal"
	mw := newBenchWorker(s.Client, minimalQueue, minimalWorkflow, func(context.Context) error { return nil })
	defer mw.Stop()

	ctx := context.Background()
	remote := dialRemote(b, s)
	defer remote.Close()
	for _, from := range starts(s.Client, remote) {
		c := starter.New(from.client, "")
		run := map[string]func(id string) error{
			"minimal-workflow": func(id string) error {
				r, err := from.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: minimalQueue, EnableEagerStart: from.eager}, "Minimal")
				if err != nil {
					return err
				}
				return r.Get(ctx, nil)
			},
			"onceflow-webhook": func(id string) error {
				started, err := c.Send(ctx, onceflow.Notification{Key: id, Body: "throughput probe",
					Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL}}})
				if err != nil {
					return err
				}
				_, err = c.WaitRun(ctx, started)
				return err
			},
		}
		for _, kind := range []string{"minimal-workflow", "onceflow-webhook"} {
			name := kind + "-" + from.name
			for _, inFlight := range []int{1, 16, 64} {
				b.Run(fmt.Sprintf("%s/in-flight-%d", name, inFlight), func(b *testing.B) {
					defer reportLoad(b, loadAverage())
					ids := make(chan string)
					var wg sync.WaitGroup
					for range inFlight {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for id := range ids {
								if err := run[kind](id); err != nil {
									b.Error(err)
								}
							}
						}()
					}
					t0 := time.Now()
					for i := range b.N {
						ids <- fmt.Sprintf("%s-%d-%d-%d", name, inFlight, b.N, i)
					}
					close(ids)
					wg.Wait()
					b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "notifications/s")
				})
			}
		}
	}
}

// BenchmarkCosts reports what one notification costs and what waiting
// notifications cost: history events per notification, Redis round trips
// and memory per delivery, the RSS of a worker process holding 10,000
// notifications on send_at timers, and immediate throughput while they wait.
//
//	go test -run '^$' -bench Costs -benchtime 1x -timeout 30m ./internal/devstack
func BenchmarkCosts(b *testing.B) {
	const waiting, immediate = 10000, 500
	dir := b.TempDir()
	bin := buildBinary(b, dir)

	var logs testenv.Buffer
	cfg := config(b, dir, &logs)
	cfg.UIPort, cfg.APIAddr, cfg.Workers = 0, "", 0
	s := start(b, cfg)
	defer s.Stop()
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer rcv.Close()
	ropts, err := redis.ParseURL(s.RedisURL)
	require.NoError(b, err)
	rdb := redis.NewClient(ropts)
	defer func() { _ = rdb.Close() }()

	w := startWorkerProcess(b, bin, s, &logs)

	ctx := context.Background()
	c := starter.New(s.Client, "")
	notification := func(key string, sendAt *time.Time) onceflow.Notification {
		return onceflow.Notification{Key: key, Body: "cost probe", SendAt: sendAt,
			Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL}}}
	}
	burst := func(prefix string, n int, sendAt *time.Time, wait bool) time.Duration {
		ids := make(chan int)
		var wg sync.WaitGroup
		t0 := time.Now()
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range ids {
					key := fmt.Sprintf("%s-%d", prefix, i)
					started, err := c.Send(ctx, notification(key, sendAt))
					require.NoError(b, err)
					if wait {
						_, err = c.WaitRun(ctx, started)
						require.NoError(b, err)
					}
				}
			}()
		}
		for i := range n {
			ids <- i
		}
		close(ids)
		wg.Wait()
		return time.Since(t0)
	}

	for range b.N {
		// Warm up, then measure Redis per delivery over a clean batch.
		burst("warm", 50, nil, true)
		before := redisStats(b, rdb)
		baseline := burst("baseline", immediate, nil, true)
		after := redisStats(b, rdb)
		b.ReportMetric(float64(after.calls-before.calls)/immediate, "redis-round-trips/delivery")
		b.ReportMetric(float64(after.memory-before.memory)/immediate, "redis-bytes/delivery")
		b.ReportMetric(immediate/baseline.Seconds(), "notifications/s")

		it := s.Client.GetWorkflowHistory(ctx, workflows.ID("baseline-0"), "", false, 0)
		events := 0
		for it.HasNext() {
			_, err := it.Next()
			require.NoError(b, err)
			events++
		}
		b.ReportMetric(float64(events), "history-events/notification")

		rssBefore := rss(b, w.Process.Pid)
		later := time.Now().Add(time.Hour)
		burst("waiting", waiting, &later, false)
		drained(b, s)
		b.ReportMetric(float64(rss(b, w.Process.Pid)-rssBefore)/waiting, "worker-rss-bytes/waiting")
		b.ReportMetric(float64(rss(b, w.Process.Pid))/(1<<20), "worker-rss-MiB")
		during := burst("during", immediate, nil, true)
		b.ReportMetric(immediate/during.Seconds(), "notifications/s-while-waiting")
	}
}

// drained waits until the workers have taken every workflow task of the
// notifications just started: they are then all waiting on their timers.
func drained(b *testing.B, s *devstack.Stack) {
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		resp, err := s.Client.WorkflowService().DescribeTaskQueue(context.Background(), &workflowservice.DescribeTaskQueueRequest{
			Namespace: devstack.Namespace, TaskQueue: &taskqueuepb.TaskQueue{Name: workflows.DefaultTaskQueue},
			TaskQueueType: enumspb.TASK_QUEUE_TYPE_WORKFLOW, ReportStats: true,
		})
		require.NoError(b, err)
		if resp.GetStats().GetApproximateBacklogCount() == 0 {
			return
		}
	}
	b.Fatal("the workflow task backlog never drained")
}

// BenchmarkScaling runs 1, 2 and 3 `onceflow worker` processes against one
// embedded Temporal server and one redis-server, and reports the throughput
// of single-webhook notifications, 64 in flight, for each.
//
//	go test -run '^$' -bench Scaling -benchtime 600x -timeout 30m ./internal/devstack
func BenchmarkScaling(b *testing.B) {
	dir := b.TempDir()
	bin := buildBinary(b, dir)
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("workers-%d", n), func(b *testing.B) {
			var logs testenv.Buffer
			cfg := config(b, b.TempDir(), &logs)
			cfg.UIPort, cfg.APIAddr, cfg.Workers = 0, "", 0
			s := start(b, cfg)
			defer s.Stop()
			for range n {
				startWorkerProcess(b, bin, s, &logs)
			}
			rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			defer rcv.Close()
			c := starter.New(s.Client, "")
			ctx := context.Background()
			ids := make(chan int)
			var wg sync.WaitGroup
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range ids {
						key := fmt.Sprintf("scale-%d-%d", b.N, i)
						started, err := c.Send(ctx, onceflow.Notification{Key: key, Body: "scaling probe",
							Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL}}})
						require.NoError(b, err)
						_, err = c.WaitRun(ctx, started)
						require.NoError(b, err)
					}
				}()
			}
			t0 := time.Now()
			for i := range b.N {
				ids <- i
			}
			close(ids)
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "notifications/s")
		})
	}
}

// buildBinary builds the onceflow binary into dir.
func buildBinary(b *testing.B, dir string) string {
	bin := filepath.Join(dir, "onceflow")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/onceflow/onceflow/cmd/onceflow").CombinedOutput()
	require.NoError(b, err, "%s", out)
	return bin
}

// startWorkerProcess runs `onceflow worker` against the stack until the
// benchmark ends. It passes on ONCEFLOW_WORKFLOW_CACHE from the environment.
func startWorkerProcess(b *testing.B, bin string, s *devstack.Stack, logs *testenv.Buffer) *exec.Cmd {
	w := exec.Command(bin, "worker")
	w.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+s.TemporalAddress, "TEMPORAL_NAMESPACE="+devstack.Namespace,
		"REDIS_URL="+s.RedisURL, "ONCEFLOW_WEBHOOK_SECRET="+testenv.WebhookSecret)
	w.Stdout, w.Stderr = logs, logs
	require.NoError(b, w.Start())
	b.Cleanup(func() { _ = w.Process.Signal(os.Interrupt); _ = w.Wait() })
	return w
}

type stats struct{ calls, memory int64 }

// topLevel says whether a commandstats line counts commands that clients
// send. INFO counts the commands each script runs inside Redis too (HMGET,
// HSET, ...); those are no round trips. The harness's own INFO is left out.
func topLevel(line string) bool {
	for _, cmd := range []string{"evalsha", "eval", "hello", "ping", "select", "auth", "client|"} {
		if strings.HasPrefix(line, "cmdstat_"+cmd+":") || (cmd == "client|" && strings.HasPrefix(line, "cmdstat_client|")) {
			return true
		}
	}
	return false
}

// redisStats reads the commands clients have sent and the memory used.
func redisStats(b *testing.B, rdb *redis.Client) stats {
	info, err := rdb.Info(context.Background(), "commandstats", "memory").Result()
	require.NoError(b, err)
	var st stats
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case topLevel(line):
			_, rest, _ := strings.Cut(line, "calls=")
			n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
			st.calls += n
		case strings.HasPrefix(line, "used_memory:"):
			st.memory, _ = strconv.ParseInt(strings.TrimPrefix(line, "used_memory:"), 10, 64)
		}
	}
	return st
}

// rss is a process's resident set size in bytes, from /proc.
func rss(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(b, err)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			require.NoError(b, err)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
