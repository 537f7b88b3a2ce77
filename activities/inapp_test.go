package activities_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/internal/freeport"
)

func inAppInput(t *testing.T, sub string) activities.DeliverInput {
	d := onceflow.Delivery{Channel: onceflow.InApp, To: sub}
	key := onceflow.ScopedKey("acme", t.Name())
	return activities.DeliverInput{Key: key, Tenant: "acme", DeliveryID: d.ID(key), Delivery: d,
		Subject: "Hi", Body: "hello", Timestamp: time.Now(), Fingerprint: "fp1"}
}

func TestInAppWritesOnceAndNeverHoldsALease(t *testing.T) {
	store := feed.New(redisServer.Client(t), time.Hour, time.Hour)
	acts := &activities.Activities{Feed: store}
	in := inAppInput(t, "u1")

	out, err := deliver(t, acts, in)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, out.Status)
	assert.Equal(t, "feed item "+in.DeliveryID, out.Receipt)
	assert.Empty(t, out.Reason)

	// The same activity again, as after a worker died between the write
	// and its report: delivered, written once.
	out, err = deliver(t, acts, in)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, out.Status)
	assert.Contains(t, out.Reason, "earlier attempt of this delivery")

	page, err := store.Page(t.Context(), "acme", "u1", "", 10)
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	assert.Equal(t, t.Name(), page.Items[0].Key, "the caller's key, without the tenant")

	in.Fingerprint, in.Body = "fp2", "another payload"
	_, err = deliver(t, acts, in)
	appErr := appError(t, err)
	assert.Equal(t, activities.TypeKeyConflict, appErr.Type())
	assert.True(t, appErr.NonRetryable())
}

func TestInAppWithoutAnAnswerMayHaveWritten(t *testing.T) {
	port, err := freeport.Get()
	require.NoError(t, err)
	gone := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	t.Cleanup(func() { _ = gone.Close() })
	_, err = deliver(t, &activities.Activities{Feed: feed.New(gone, time.Hour, time.Hour)}, inAppInput(t, "u1"))
	appErr := appError(t, err)
	assert.Equal(t, activities.TypeDedupUnavailable, appErr.Type())
	var details activities.FailureDetails
	require.NoError(t, appErr.Details(&details))
	assert.True(t, details.MaybeSent, "a delivery that gives up so is ambiguous, not failed")

	_, err = deliver(t, &activities.Activities{}, inAppInput(t, "u1"))
	assert.Equal(t, activities.TypeNoProvider, appError(t, err).Type())
}
