package broadcast_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
)

// TestWaitBroadcastOutlastsAStatusThatCannotBeReadYet waits on a broadcast
// whose status cannot be read at first: no worker has taken its first
// workflow task (as when `onceflow broadcast --wait` runs while the
// workers restart), so Temporal refuses the status query. The wait keeps
// polling and returns the counts once a worker has run the broadcast.
func TestWaitBroadcastOutlastsAStatusThatCannotBeReadYet(t *testing.T) {
	rcv := testenv.NewReceiver(t)
	b := broadcastTo(t, rcv.URL, 20)
	// The queue is the one servers.New serves for this test, but no worker
	// polls it yet.
	queue := "q-" + t.Name()
	c := broadcast.NewClient(starter.New(servers.Temporal.GetDefaultClient(), queue), recipients.New(servers.Redis.Client(t)), time.Hour)
	ctx := teststack.Context(t)
	_, err := c.Send(ctx, b)
	require.NoError(t, err)

	type waited struct {
		st  broadcast.Status
		err error
	}
	done := make(chan waited, 1)
	go func() {
		st, err := c.Wait(ctx, b.Key, 100*time.Millisecond, nil)
		done <- waited{st, err}
	}()
	select {
	case w := <-done:
		t.Fatalf("the wait ended before any worker ran the broadcast: %+v, %v", w.st, w.err)
	case <-time.After(2 * time.Second):
	}

	s := servers.New(t, servers.WorkerConfig(), nil)
	require.Equal(t, queue, s.Queue)
	w := <-done
	require.NoError(t, w.err)
	assert.Equal(t, "completed", w.st.Execution)
	assert.Equal(t, 20, w.st.Delivered, w.st.Progress())
}
