package devstack_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/providers/sms"
	"github.com/onceflow/onceflow/starter"
)

// The cap is checked where the provider sees it, on arrival, over
// capWindow. The limiter spaces its slots exactly (ratelimit's
// TestReservationsAreSpacedAtTheRate); what arrives at the provider is
// each slot plus the send's own latency, which varies by up to
// arrivalJitter under the suite's load, so any window of arrivals can hold
// rate x arrivalJitter + 1 more than rate x window. Over one second that
// allowance drowns the cap (CI measured 13 in a second at 10/s: about
// 0.3 s of jitter); over five seconds it is a tenth of it, and a limiter
// 20% fast (60 in 5 s) or none (18-80/s) still fails.
const (
	capWindow     = 5 * time.Second
	arrivalJitter = 500 * time.Millisecond
)

// capBound is the most arrivals any capWindow may hold at rate.
func capBound(rate int) int {
	return int(float64(rate)*(capWindow+arrivalJitter).Seconds()) + 1
}

// TestBurstIsDeliveredAtTheCappedRate sends 300 SMS notifications at once
// to a provider capped at 10 sends a second, across two workers, and checks
// at the provider that every one arrived exactly once, that no second held
// more than the cap, and that the burst flowed at the cap. The cap is set
// well below what this 2-core machine delivers while the rest of the suite
// runs beside it (about 18/s measured then; 80/s alone), so the test shows
// the limiter, not the machine's load. BenchmarkServerSideRateLimit keeps
// the 1,000-at-50/s figures of docs/channels.md.
func TestBurstIsDeliveredAtTheCappedRate(t *testing.T) {
	if testing.Short() {
		t.Skip("a 300-notification burst at 10/s takes 30s; -short skips it")
	}
	const burst, rate = 300, 10
	var mu sync.Mutex
	arrivals := map[string][]time.Time{}
	twilio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		arrivals[r.PostForm.Get("Body")] = append(arrivals[r.PostForm.Get("Body")], time.Now())
		mu.Unlock()
		w.WriteHeader(201)
		_, _ = w.Write([]byte(`{"sid":"SM1"}`))
	}))
	defer twilio.Close()

	var logs testenv.Buffer
	cfg := config(t, t.TempDir(), &logs)
	cfg.UIPort, cfg.APIAddr = 0, ""
	cfg.Worker.SMS = []sms.Config{{AccountSID: "AC1", AuthToken: "t", From: "+15005550006", BaseURL: twilio.URL}}
	cfg.Worker.Rates = map[onceflow.Channel]float64{onceflow.SMS: rate}
	s := start(t, cfg)
	defer s.Stop()
	c := starter.New(s.Client, "")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	keys := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				_, err := c.Send(ctx, onceflow.Notification{
					Key: fmt.Sprintf("burst-%d", i), Body: fmt.Sprintf("message %d", i),
					Deliveries: []onceflow.Delivery{{Channel: onceflow.SMS, To: "+447700900123"}},
				})
				assert.NoError(t, err)
			}
		}()
	}
	for i := range burst {
		keys <- i
	}
	close(keys)
	wg.Wait()
	for i := range burst {
		res, err := c.Wait(ctx, fmt.Sprintf("burst-%d", i))
		require.NoError(t, err)
		require.Equal(t, onceflow.Delivered, res.Deliveries[0].Status, res.Deliveries[0].Reason)
	}

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, arrivals, burst, "every notification reached the provider")
	var all []time.Time
	for body, at := range arrivals {
		require.Len(t, at, 1, "%s arrived once", body)
		all = append(all, at[0])
	}
	achieved, busiestSecond, spread := flow(all, time.Second)
	_, busiest, _ := flow(all, capWindow)
	t.Logf("%d sends over %v: %.1f/s; busiest second %d sends, busiest %v %d", len(all), spread.Round(time.Millisecond), achieved, busiestSecond, capWindow, busiest)
	assert.LessOrEqual(t, busiest, capBound(rate), "no %v may exceed the cap (rate x window, + the arrival jitter allowed)", capWindow)
	if raceDetector {
		// Measured under -race: 4.2/s, the instrumented server's own pace.
		t.Log("-race: the server cannot keep up the capped rate, so only the cap is checked")
		return
	}
	assert.InDelta(t, rate, achieved, rate*0.1, "the burst flows at the capped rate")
}

// BenchmarkServerSideRateLimit measures the alternative to the Redis
// limiter: Temporal's own per-task-queue cap (TaskQueueActivitiesPerSecond)
// on a queue for one provider, for the same 1,000 burst at 50/s. It reports
// the achieved rate and the busiest second, next to the figures
// TestBurstIsDeliveredAtTheCappedRate logs for the Redis limiter.
//
//	go test -run '^$' -bench ServerSideRateLimit -benchtime 1x ./internal/devstack
func BenchmarkServerSideRateLimit(b *testing.B) {
	const burst, rate = 1000, 50
	var logs testenv.Buffer
	cfg := config(b, b.TempDir(), &logs)
	cfg.UIPort, cfg.APIAddr, cfg.Workers = 0, "", 1
	s := start(b, cfg)
	defer s.Stop()

	var mu sync.Mutex
	var all []time.Time
	send := func(context.Context) error {
		mu.Lock()
		all = append(all, time.Now())
		mu.Unlock()
		return nil
	}
	limited := worker.New(s.Client, "rate-limited", worker.Options{TaskQueueActivitiesPerSecond: rate})
	limited.RegisterActivityWithOptions(send, activity.RegisterOptions{Name: "Send"})
	limited.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		return workflow.ExecuteActivity(ctx, "Send").Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "Limited"})
	require.NoError(b, limited.Start())
	defer limited.Stop()

	ctx := context.Background()
	for range b.N {
		all = all[:0]
		runs := make([]client.WorkflowRun, burst)
		for i := range burst {
			run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "rate-limited", ID: fmt.Sprintf("limited-%d-%d", b.N, i)}, "Limited")
			require.NoError(b, err)
			runs[i] = run
		}
		for _, run := range runs {
			require.NoError(b, run.Get(ctx, nil))
		}
	}
	achieved, busiest, _ := flow(all, time.Second)
	b.ReportMetric(achieved, "sends/s")
	b.ReportMetric(float64(busiest), "busiest-second")
}

// flow sorts the send times and returns the average rate over their spread
// and the most sends in any one window.
func flow(at []time.Time, window time.Duration) (perSecond float64, busiest int, spread time.Duration) {
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	for i, j := 0, 0; i < len(at); i++ {
		for at[i].Sub(at[j]) >= window {
			j++
		}
		busiest = max(busiest, i-j+1)
	}
	spread = at[len(at)-1].Sub(at[0])
	return float64(len(at)-1) / spread.Seconds(), busiest, spread
}

// The burst test's cap check holds for slots at the rate that arrive up to
// arrivalJitter late, and fails for a limiter 20% fast or none at all.
func TestCapBoundTellsALimiterFromJitter(t *testing.T) {
	const rate, n = 10, 300
	start := time.Now()
	arrivals := func(perSecond float64, jitter func(i int) time.Duration) []time.Time {
		at := make([]time.Time, n)
		for i := range at {
			at[i] = start.Add(time.Duration(float64(i)/perSecond*float64(time.Second)) + jitter(i))
		}
		return at
	}
	none := func(int) time.Duration { return 0 }
	// The worst jitter: a run of sends on time, then a run arriving as late
	// as allowed, bunched against them.
	worst := func(i int) time.Duration {
		if (i/60)%2 == 1 {
			return 0
		}
		return arrivalJitter
	}
	for name, tc := range map[string]struct {
		at   []time.Time
		pass bool
	}{
		"at the rate":                    {arrivals(rate, none), true},
		"at the rate, worst jitter":      {arrivals(rate, worst), true},
		"20% fast":                       {arrivals(rate*1.2, none), false},
		"no limiter, the machine's 18/s": {arrivals(18, none), false},
	} {
		_, busiest, _ := flow(tc.at, capWindow)
		assert.Equal(t, tc.pass, busiest <= capBound(rate), "%s: busiest %v holds %d, bound %d", name, capWindow, busiest, capBound(rate))
	}
}
