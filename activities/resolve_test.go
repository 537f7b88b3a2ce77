package activities_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/providers"
)

// resolving is a provider whose receiving end can be asked: it has the
// messages in have, and answers lookups with lookupErr when set.
type resolving struct {
	mu        sync.Mutex
	have      map[string]string // delivery ID -> receipt
	sends     int
	lookups   int
	since     time.Time
	lookupErr error
}

func (r *resolving) Send(_ context.Context, m providers.Message) (providers.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sends++
	r.have[m.DeliveryID] = "ts 2"
	return providers.Receipt{ID: "ts 2"}, nil
}

func (r *resolving) Lookup(_ context.Context, m providers.Message, since time.Time) (providers.Receipt, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	r.since = since
	if r.lookupErr != nil {
		return providers.Receipt{}, false, r.lookupErr
	}
	id, ok := r.have[m.DeliveryID]
	return providers.Receipt{ID: id}, ok, nil
}

// ambiguousChat is a chat delivery (held when ambiguous) whose earlier
// attempt died mid-send, through p.
func ambiguousChat(t *testing.T, p providers.Provider) (*activities.Activities, *dedup.Store, activities.DeliverInput) {
	acts, store := setup(t, activities.Hold)
	acts.Providers[onceflow.Chat] = p
	d := onceflow.Delivery{Channel: onceflow.Chat, To: "C123"}
	in := activities.DeliverInput{Key: t.Name(), DeliveryID: d.ID(t.Name()), Delivery: d, Body: "deployed",
		Timestamp: time.Now().Add(-time.Hour)}
	expireLease(t, store, in)
	return acts, store, in
}

func TestAmbiguousDeliveryFoundByTheProviderIsDelivered(t *testing.T) {
	p := &resolving{}
	acts, store, in := ambiguousChat(t, p)
	p.have = map[string]string{in.DeliveryID: "slack C123 ts 1"}

	out, err := deliver(t, acts, in)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, out.Status, out.Reason)
	assert.Equal(t, "slack C123 ts 1", out.Receipt)
	assert.Contains(t, out.Reason, "confirmed by the provider after an interrupted attempt")
	assert.Zero(t, p.sends, "not sent again")
	assert.WithinDuration(t, in.Timestamp.Add(-time.Minute), p.since, 0, "looked up from when the notification became due, less a margin")

	c, err := store.Claim(context.Background(), dedup.Record{Key: in.Key, DeliveryID: in.DeliveryID}, "next", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.AlreadySent, c.State, "committed: a later attempt is suppressed")
	assert.Equal(t, "slack C123 ts 1", c.Receipt)
}

func TestAmbiguousDeliveryTheProviderDoesNotHaveIsSentOnce(t *testing.T) {
	p := &resolving{have: map[string]string{}}
	acts, _, in := ambiguousChat(t, p)

	out, err := deliver(t, acts, in)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, out.Status, out.Reason)
	assert.Contains(t, out.Reason, "confirmed that it had not sent it")
	assert.Equal(t, 1, p.lookups)
	assert.Equal(t, 1, p.sends)

	out, err = deliver(t, acts, in)
	require.NoError(t, err)
	// The test environment runs every execution as the same activity of
	// the same run: the record is this delivery's own.
	assert.Equal(t, onceflow.Delivered, out.Status, "the re-send was recorded as a clean send: %s", out.Reason)
	assert.Equal(t, 1, p.sends)
}

func TestFailedLookupKeepsTheDeliveryAmbiguousAndIsRetried(t *testing.T) {
	p := &resolving{have: map[string]string{}, lookupErr: &providers.Error{RetryAfter: 3 * time.Second, Err: errors.New("chat: conversations.history: ratelimited")}}
	acts, store, in := ambiguousChat(t, p)

	_, err := deliver(t, acts, in)
	appErr := appError(t, err)
	assert.Equal(t, activities.TypeLookupFailed, appErr.Type())
	assert.False(t, appErr.NonRetryable(), "a lookup is retried like a send")
	assert.Equal(t, 3*time.Second, appErr.NextRetryDelay())
	var details activities.FailureDetails
	require.NoError(t, appErr.Details(&details))
	assert.True(t, details.MaybeSent, "a delivery that gives up now is reported ambiguous")
	assert.Zero(t, p.sends, "never re-sent blindly")

	c, err := store.Claim(context.Background(), dedup.Record{Key: in.Key, DeliveryID: in.DeliveryID}, "next", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, dedup.Granted, c.State, "released for the next attempt")
	assert.True(t, c.Ambiguous, "still marked: the next attempt looks up again")
}

func TestLookupThatCannotSucceedHoldsTheDelivery(t *testing.T) {
	for name, lookupErr := range map[string]error{
		"permanent":   &providers.Error{Permanent: true, Err: errors.New("chat: conversations.history: missing_scope")},
		"unsupported": providers.ErrNoLookup,
	} {
		t.Run(name, func(t *testing.T) {
			p := &resolving{have: map[string]string{}, lookupErr: lookupErr}
			acts, _, in := ambiguousChat(t, p)
			out, err := deliver(t, acts, in)
			require.NoError(t, err)
			assert.Equal(t, onceflow.Ambiguous, out.Status)
			assert.Contains(t, out.Reason, "held")
			assert.Zero(t, p.sends)
		})
	}
}
