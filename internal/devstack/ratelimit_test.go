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

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/providers/sms"
	"github.com/onceflow/onceflow/starter"
)

// TestBurstIsDeliveredAtTheCappedRate sends 1,000 SMS notifications at once
// to a provider capped at 50 sends a second, across two workers, and checks
// at the provider that every one arrived exactly once and that no second
// held more than the cap.
func TestBurstIsDeliveredAtTheCappedRate(t *testing.T) {
	const burst, rate = 1000, 50
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
	sort.Slice(all, func(i, j int) bool { return all[i].Before(all[j]) })
	busiest := 0
	for i, j := 0, 0; i < len(all); i++ {
		for all[i].Sub(all[j]) >= time.Second {
			j++
		}
		busiest = max(busiest, i-j+1)
	}
	spread := all[len(all)-1].Sub(all[0])
	achieved := float64(len(all)-1) / spread.Seconds()
	t.Logf("%d sends over %v: %.1f/s; busiest second %d sends", len(all), spread.Round(time.Millisecond), achieved, busiest)
	assert.LessOrEqual(t, busiest, rate*11/10, "no second may exceed the cap (+10% for arrival jitter)")
	assert.InDelta(t, rate, achieved, rate*0.1, "the burst flows at the capped rate")
}
