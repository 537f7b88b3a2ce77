package events_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/events"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/worker"
)

// A broadcast's recipient that the receiver refuses is reported like a
// notification's delivery: one delivery.failed naming the broadcast's key,
// the recipient's id and its delivery ID; the delivered recipients are
// not reported.
func TestBroadcastRecipientRefusedEmitsOneFailedEvent(t *testing.T) {
	evr, eventsURL := newEventsReceiver(t)
	cfg := servers.WorkerConfig()
	cfg.RedisURL = "redis://" + servers.Redis.Addr + "/" + strconv.Itoa(int(nextDB.Add(1)))
	cfg.EventsURL = eventsURL
	s := servers.New(t, cfg, nil)
	rdb, err := cfg.Open(false)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	stop, err := worker.StartEvents(context.Background(), cfg, rdb, nil)
	require.NoError(t, err)
	t.Cleanup(stop)

	b := onceflow.Broadcast{Key: key(t), Channel: onceflow.Webhook, Subject: "Sale", Body: "Everything must go."}
	refused := onceflow.RecipientDeliveryID(b.ScopedKey(), "user-1")
	rcv := testenv.NewReceiver(t, testenv.Answer(func(id string, _ int) int {
		if id == refused {
			return http.StatusBadRequest
		}
		return http.StatusOK
	}))
	for i := range 3 {
		b.Recipients = append(b.Recipients, onceflow.Recipient{ID: fmt.Sprintf("user-%d", i), To: fmt.Sprintf("%s%s/%d", rcv.URL, secretPath, i)})
	}
	c := broadcast.NewClient(starter.New(s.TC, s.Queue), recipients.New(rdb), time.Hour)
	ctx := teststack.Context(t)
	_, err = c.Send(ctx, b)
	require.NoError(t, err)
	st, err := c.Wait(ctx, b.Key, 100*time.Millisecond, nil)
	require.NoError(t, err)
	require.Equal(t, 2, st.Delivered, st.Progress())
	require.Equal(t, 1, st.Failed, st.Progress())

	require.Eventually(t, func() bool { return len(evr.ofType(events.TypeDeliveryFailed)) >= 1 }, time.Minute, 50*time.Millisecond)
	// Give a stray second event time to arrive before counting.
	time.Sleep(time.Second)
	failed := evr.ofType(events.TypeDeliveryFailed)
	require.Len(t, failed, 1)
	assert.Equal(t, b.Key, failed[0].Data.Key)
	assert.Equal(t, "user-1", failed[0].Data.Recipient)
	assert.Equal(t, refused, failed[0].Data.DeliveryID)
	assert.Equal(t, "webhook", failed[0].Data.Channel)
	assert.Contains(t, failed[0].Data.Reason, "400")
	assert.Empty(t, evr.ofType(events.TypeDeliveryAmbiguous))
	assertNoRecipients(t, evr)
}
