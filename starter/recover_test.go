package starter_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/starter"
)

// fixable is a receiver that refuses every request with 400 until fixed.
func fixable(t *testing.T) (*testenv.Receiver, *atomic.Bool) {
	var fixed atomic.Bool
	rcv := testenv.NewReceiver(t, testenv.Dedup(), testenv.RefuseUntil(&fixed, http.StatusBadRequest))
	return rcv, &fixed
}

// recoverUntil runs Recover until it finds something (the visibility
// store learns of a closed notification shortly after it closes).
func recoverUntil(t *testing.T, c *starter.Client, opts starter.RecoverOptions) starter.RecoverReport {
	t.Helper()
	var report starter.RecoverReport
	require.Eventually(t, func() bool {
		var err error
		report, err = c.Recover(ctxFor(t), opts)
		require.NoError(t, err)
		return len(report.Resent)+len(report.Skipped) > 0
	}, time.Minute, 100*time.Millisecond)
	return report
}

func tenantOf(t *testing.T) string {
	return strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
}

func TestRecoverResendsAFailedDeliveryOnceFixed(t *testing.T) {
	s := newStack(t, nil)
	c := s.Client.ForTenant(tenantOf(t))
	since := time.Now().Add(-time.Second)
	rcv, fixed := fixable(t)
	n := webhookTo(t, rcv.URL)
	started, err := c.Send(ctxFor(t), n)
	require.NoError(t, err)
	res, err := c.WaitRun(ctxFor(t), started)
	require.NoError(t, err)
	require.Equal(t, onceflow.Failed, res.Deliveries[0].Status, res.Deliveries[0].Reason)

	fixed.Store(true)
	report := recoverUntil(t, c, starter.RecoverOptions{Since: since})
	require.Len(t, report.Resent, 1, "%+v", report)
	r := report.Resent[0]
	assert.Equal(t, n.Key, r.Key)
	assert.Equal(t, n.Key+".recover", r.NewKey)
	assert.Equal(t, res.Deliveries[0].DeliveryID, r.DeliveryID)
	got, err := c.Wait(ctxFor(t), r.NewKey)
	require.NoError(t, err)
	require.Equal(t, onceflow.Delivered, got.Deliveries[0].Status, got.Deliveries[0].Reason)
	assert.Equal(t, 1, rcv.Applied(r.NewDeliveryID), "delivered once")
	before := len(rcv.Headers())

	// The second run finds the first's recovery: nothing is sent twice.
	// The recovery itself delivered, so it is not listed.
	again, err := c.Recover(ctxFor(t), starter.RecoverOptions{Since: since})
	require.NoError(t, err)
	assert.Empty(t, again.Resent)
	require.Len(t, again.Skipped, 1)
	assert.Contains(t, again.Skipped[0].Reason, "already re-sent")
	assert.Equal(t, before, len(rcv.Headers()), "no request at the receiver")
	assert.Equal(t, 1, rcv.Applied(r.NewDeliveryID))

	// Another tenant recovers none of it.
	other, err := s.Client.ForTenant(tenantOf(t)+"-other").Recover(ctxFor(t), starter.RecoverOptions{Since: since})
	require.NoError(t, err)
	assert.Empty(t, other.Resent)
	assert.Empty(t, other.Skipped)
}

func TestRecoverNeverResendsAnAmbiguousDelivery(t *testing.T) {
	s := newStack(t, nil)
	c := s.Client.ForTenant(tenantOf(t))
	since := time.Now().Add(-time.Second)
	// Applies the first request and answers 500; does not deduplicate:
	// the re-send may be a second copy.
	rcv := testenv.NewReceiver(t, testenv.ApplyThen(500))
	started, err := c.Send(ctxFor(t), webhookTo(t, rcv.URL))
	require.NoError(t, err)
	res, err := c.WaitRun(ctxFor(t), started)
	require.NoError(t, err)
	require.Equal(t, onceflow.Ambiguous, res.Deliveries[0].Status, res.Deliveries[0].Reason)
	before := len(rcv.Headers())

	report := recoverUntil(t, c, starter.RecoverOptions{Since: since})
	assert.Empty(t, report.Resent)
	require.Len(t, report.Skipped, 1)
	assert.Equal(t, onceflow.Ambiguous, report.Skipped[0].Status)
	assert.Contains(t, report.Skipped[0].Reason, "never re-sends")
	assert.Equal(t, before, len(rcv.Headers()))
}

func TestRecoverFiltersByChannel(t *testing.T) {
	s := newStack(t, nil)
	c := s.Client.ForTenant(tenantOf(t))
	since := time.Now().Add(-time.Second)
	rcv, fixed := fixable(t)
	n := webhookTo(t, rcv.URL)
	// No e-mail provider on this worker: refused, failed.
	n.Deliveries = append(n.Deliveries, onceflow.Delivery{Channel: onceflow.Email, To: "alice@example.com"})
	started, err := c.Send(ctxFor(t), n)
	require.NoError(t, err)
	res, err := c.WaitRun(ctxFor(t), started)
	require.NoError(t, err)
	require.Equal(t, onceflow.Failed, res.Deliveries[0].Status)
	require.Equal(t, onceflow.Failed, res.Deliveries[1].Status)

	fixed.Store(true)
	report := recoverUntil(t, c, starter.RecoverOptions{Since: since, Channel: onceflow.Webhook})
	require.Len(t, report.Resent, 1, "%+v", report)
	assert.Equal(t, onceflow.Webhook, report.Resent[0].Channel)
	got, err := c.Wait(ctxFor(t), report.Resent[0].NewKey)
	require.NoError(t, err)
	require.Len(t, got.Deliveries, 1, "only the webhook is re-sent")
	assert.Equal(t, onceflow.Delivered, got.Deliveries[0].Status)
}

func TestRecoverRefusesBadOptions(t *testing.T) {
	s := newStack(t, nil)
	for field, opts := range map[string]starter.RecoverOptions{
		"since":   {},
		"status":  {Since: time.Now(), Status: onceflow.Ambiguous},
		"channel": {Since: time.Now(), Channel: "pigeon"},
	} {
		_, err := s.Client.Recover(ctxFor(t), opts)
		var invalid *onceflow.ValidationError
		require.ErrorAs(t, err, &invalid, field)
		assert.Equal(t, field, invalid.Field)
	}
}

func TestRecoverKeyStaysWithinTheKeyLimit(t *testing.T) {
	assert.Equal(t, "order-1.recover", starter.RecoverKey("order-1"))
	long := strings.Repeat("k", onceflow.MaxKeyLength)
	k := starter.RecoverKey(long)
	assert.Len(t, k, onceflow.MaxKeyLength)
	assert.True(t, strings.HasSuffix(k, ".recover"))
	assert.NoError(t, onceflow.ValidateKey(k))
	assert.NotEqual(t, k, starter.RecoverKey(long[:onceflow.MaxKeyLength-1]+"j"), "a hash of the whole key keeps long keys apart")
	assert.Equal(t, k, starter.RecoverKey(long), "deterministic")
}
