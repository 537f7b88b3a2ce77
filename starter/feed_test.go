package starter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
)

// An in-app notification lands in its subscriber's feed, read through the
// feed service in its tenant's scope; the same key sent again after Temporal
// has forgotten the notification is suppressed and written no second time.
func TestInAppNotificationLandsInTheFeedOnce(t *testing.T) {
	s := servers.New(t, servers.WorkerConfig(), nil)
	ctx := teststack.Context(t)
	store := feed.New(servers.Redis.Client(t), time.Hour, time.Hour)
	c := starter.New(s.TC, s.Queue).ForTenant("acme")
	feeds := feed.NewService(store)
	sub := "user-" + strings.ReplaceAll(t.Name(), "/", "-")
	n := onceflow.Notification{Key: "comment-1", Subject: "New comment", Body: "Ada replied to your post",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.InApp, To: sub}}}

	started, err := c.Send(ctx, n)
	require.NoError(t, err)
	res, err := c.WaitRun(ctx, started)
	require.NoError(t, err)
	d := res.Deliveries[0]
	assert.Equal(t, onceflow.Delivered, d.Status, d.Reason)
	assert.Equal(t, "feed item "+d.DeliveryID, d.Receipt)

	page, err := feeds.ForTenant("acme").Page(ctx, sub, "", 10)
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	it := page.Items[0]
	assert.Equal(t, d.DeliveryID, it.ID)
	assert.Equal(t, "comment-1", it.Key, "the caller's key, without the tenant")
	assert.Equal(t, "New comment", it.Subject)
	assert.Equal(t, "Ada replied to your post", it.Body)
	assert.Equal(t, 1, page.Unread)

	other, err := feeds.ForTenant("globex").Page(ctx, sub, "", 10)
	require.NoError(t, err)
	assert.Empty(t, other.Items, "another tenant's subscriber with the same id sees nothing")

	teststack.DeleteWorkflow(t, s.TC, servers.Temporal.GetDefaultNamespace(), started.WorkflowID)
	started, err = c.Send(ctx, n)
	require.NoError(t, err)
	res, err = c.WaitRun(ctx, started)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Suppressed, res.Deliveries[0].Status, res.Deliveries[0].Reason)

	n.Body = "another payload"
	teststack.DeleteWorkflow(t, s.TC, servers.Temporal.GetDefaultNamespace(), started.WorkflowID)
	started, err = c.Send(ctx, n)
	require.NoError(t, err)
	res, err = c.WaitRun(ctx, started)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Failed, res.Deliveries[0].Status)
	assert.Contains(t, res.Deliveries[0].Reason, "different payload")

	require.NoError(t, feeds.ForTenant("acme").MarkRead(ctx, sub, it.ID))
	assert.ErrorIs(t, feeds.ForTenant("acme").MarkRead(ctx, sub, "dlv_missing"), feed.ErrNoItem)
	page, err = feeds.ForTenant("acme").Page(ctx, sub, "", 10)
	require.NoError(t, err)
	require.Len(t, page.Items, 1, "written once")
	assert.True(t, page.Items[0].Read)
	assert.Zero(t, page.Unread)

	_, err = feeds.ForTenant("acme").Page(ctx, "ada@example.com", "", 10)
	assert.ErrorContains(t, err, "subscriber")
}
