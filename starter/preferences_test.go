package starter_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/starter"
)

func TestClientPreferencesDecideAtSendTime(t *testing.T) {
	var in teststack.Inbox
	cfg, _ := servers.ChannelServers(t, &in, false)
	critical, err := preferences.ParseCritical("security")
	require.NoError(t, err)
	cfg.Preferences = preferences.Config{Critical: critical, Secret: "starter-test-secret-0123456789abcdef01234567", PublicURL: "https://notify.example.com"}
	s := servers.New(t, cfg, nil)
	c := starter.New(s.TC, s.Queue).ForTenant("shop")
	prefs := preferences.NewService(preferences.New(servers.Redis.Client(t), critical), cfg.Preferences.Links()).ForTenant("shop")
	ctx := ctxFor(t)
	hook := testenv.NewReceiver(t)

	stored, err := prefs.Set(ctx, "user-9", preferences.Preferences{OptOuts: []preferences.OptOut{{Category: "marketing", Channel: "email"}}})
	require.NoError(t, err)
	require.Len(t, stored.OptOuts, 1)
	_, err = prefs.Set(ctx, "user-9", preferences.Preferences{OptOuts: []preferences.OptOut{{Category: "security", Channel: "*"}}})
	var ve *onceflow.ValidationError
	require.True(t, errors.As(err, &ve), "%v", err)
	assert.Equal(t, "opt_outs[0].category", ve.Field)

	n := onceflow.Notification{
		Key: "prefs-client-1", Subscriber: "user-9", Category: "marketing", Subject: "Sale", Body: "Everything must go.",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Email, To: "ada@example.com"}, {Channel: onceflow.Webhook, To: hook.URL + "/hooks"}},
	}
	started, err := c.Send(ctx, n)
	require.NoError(t, err)
	res, err := c.WaitRun(ctx, started)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Skipped, res.Deliveries[0].Status)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[1].Status)
	testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "preferences_email_skipped")

	// The decision was taken once and recorded: preferences changed since
	// do not change what the notification reports.
	_, err = prefs.Set(ctx, "user-9", preferences.Preferences{})
	require.NoError(t, err)
	st, err := c.Status(ctx, "prefs-client-1")
	require.NoError(t, err)
	assert.Equal(t, onceflow.Skipped, st.Result.Deliveries[0].Status)
	assert.Empty(t, in.Mail())

	link, err := prefs.NewUnsubscribeLink("user-9", "marketing", "email", time.Hour)
	require.NoError(t, err)
	assert.Contains(t, link.URL, "https://notify.example.com/v1/unsubscribe/")
	_, err = prefs.NewUnsubscribeLink("user-9", "security", "email", time.Hour)
	assert.True(t, errors.As(err, &ve) && ve.Field == "category", "%v", err)
}
