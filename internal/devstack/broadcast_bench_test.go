package devstack_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/starter"
)

// BenchmarkBroadcast sends one 10,000-recipient webhook broadcast to a
// local receiver on the dev stack (embedded Temporal on SQLite, one
// redis-server, one worker in the process), and, for comparison, 1,000 of
// the same recipients as single notifications, 64 in flight. It reports
// deliveries per second and the seconds until the last recipient was
// delivered; the singles' time for 10,000 is extrapolated from their rate.
// Each recipient must reach the receiver exactly once.
//
//	go test -run '^$' -bench 'Broadcast$' -benchtime 1x -timeout 20m ./internal/devstack
//
// -bench 'Broadcast$/broadcast' runs the broadcast alone (to profile it,
// say).
func BenchmarkBroadcast(b *testing.B) {
	const recipientsN, singlesN = 10_000, 1_000
	var logs testenv.Buffer
	cfg := config(b, b.TempDir(), &logs)
	cfg.UIPort, cfg.APIAddr, cfg.Workers = 0, "", 1
	s := start(b, cfg)
	defer s.Stop()

	var seen sync.Map
	var requests atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		n, _ := seen.LoadOrStore(r.Header.Get("Idempotency-Key"), new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}))
	defer rcv.Close()
	ropts, err := redis.ParseURL(s.RedisURL)
	require.NoError(b, err)
	rdb := redis.NewClient(ropts)
	defer func() { _ = rdb.Close() }()
	notifications := starter.New(s.Client, "")
	c := broadcast.NewClient(notifications, recipients.New(rdb), time.Hour)
	ctx := context.Background()

	bc := onceflow.Broadcast{Key: "bench-broadcast", Channel: onceflow.Webhook, Subject: "Sale", Body: "Everything must go."}
	for i := range recipientsN {
		bc.Recipients = append(bc.Recipients, onceflow.Recipient{ID: fmt.Sprintf("user-%d", i), To: fmt.Sprintf("%s/u/%d", rcv.URL, i)})
	}

	b.Run("broadcast-10000", func(b *testing.B) {
		for n := range b.N {
			bc := bc
			bc.Key = fmt.Sprintf("bench-broadcast-%d-%d", b.N, n)
			before := requests.Load()
			t0 := time.Now()
			_, err := c.Send(ctx, bc)
			require.NoError(b, err)
			started := time.Since(t0)
			st, err := c.Wait(ctx, bc.Key, 50*time.Millisecond, nil)
			require.NoError(b, err)
			took := time.Since(t0)
			require.Equal(b, recipientsN, st.Delivered, st.Progress())
			require.Equal(b, int64(recipientsN), requests.Load()-before, "each recipient sent once")
			for _, r := range bc.Recipients {
				v, ok := seen.Load(onceflow.RecipientDeliveryID(bc.Key, r.ID))
				require.True(b, ok && v.(*atomic.Int64).Load() == 1, r.ID)
			}
			b.ReportMetric(recipientsN/took.Seconds(), "deliveries/s")
			b.ReportMetric(took.Seconds(), "s-until-all-delivered")
			b.ReportMetric(started.Seconds(), "s-to-start")
		}
	})

	// The same recipients as single notifications, 64 in flight.
	b.Run("singles-1000", func(b *testing.B) {
		for n := range b.N {
			ids := make(chan int)
			var wg sync.WaitGroup
			t0 := time.Now()
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range ids {
						key := fmt.Sprintf("bench-single-%d-%d-%d", b.N, n, i)
						_, err := notifications.Send(ctx, onceflow.Notification{Key: key, Subject: bc.Subject, Body: bc.Body,
							Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: bc.Recipients[i].To}}})
						if err == nil {
							_, err = notifications.Wait(ctx, key)
						}
						if err != nil {
							b.Error(err)
						}
					}
				}()
			}
			for i := range singlesN {
				ids <- i
			}
			close(ids)
			wg.Wait()
			rate := singlesN / time.Since(t0).Seconds()
			b.ReportMetric(rate, "deliveries/s")
			b.ReportMetric(recipientsN/rate, "s-for-10000-extrapolated")
		}
	})
}

// BenchmarkBroadcastHistory100k sends one broadcast of 100,000 webhook
// recipients (onceflow.MaxRecipients) and reports its workflow's history:
// its events and bytes, next to Temporal's limits of 51,200 events and
// 50 MB.
//
//	go test -run '^$' -bench BroadcastHistory100k -benchtime 1x -timeout 20m ./internal/devstack
func BenchmarkBroadcastHistory100k(b *testing.B) {
	var logs testenv.Buffer
	cfg := config(b, b.TempDir(), &logs)
	cfg.UIPort, cfg.APIAddr, cfg.Workers = 0, "", 1
	s := start(b, cfg)
	defer s.Stop()
	var requests atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests.Add(1) }))
	defer rcv.Close()
	ropts, err := redis.ParseURL(s.RedisURL)
	require.NoError(b, err)
	rdb := redis.NewClient(ropts)
	defer func() { _ = rdb.Close() }()
	c := broadcast.NewClient(starter.New(s.Client, ""), recipients.New(rdb), time.Hour)
	ctx := context.Background()
	for n := range b.N {
		bc := onceflow.Broadcast{Key: fmt.Sprintf("bench-100k-%d", n), Channel: onceflow.Webhook, Body: "Everything must go."}
		for i := range onceflow.MaxRecipients {
			bc.Recipients = append(bc.Recipients, onceflow.Recipient{ID: fmt.Sprintf("user-%d", i), To: fmt.Sprintf("%s/u/%d", rcv.URL, i)})
		}
		before := requests.Load()
		t0 := time.Now()
		started, err := c.Send(ctx, bc)
		require.NoError(b, err)
		st, err := c.Wait(ctx, bc.Key, time.Second, nil)
		require.NoError(b, err)
		took := time.Since(t0)
		require.Equal(b, onceflow.MaxRecipients, st.Delivered, st.Progress())
		require.Equal(b, int64(onceflow.MaxRecipients), requests.Load()-before)
		h := testenv.History(b, s.Client, started.WorkflowID, started.RunID)
		b.ReportMetric(float64(len(h.Events)), "history-events")
		b.ReportMetric(float64(proto.Size(h)), "history-bytes")
		b.ReportMetric(onceflow.MaxRecipients/took.Seconds(), "deliveries/s")
	}
}
