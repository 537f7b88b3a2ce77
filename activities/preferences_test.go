package activities_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/providers"
)

// capture is an e-mail provider that keeps what it is given.
type capture struct {
	mu   sync.Mutex
	sent []providers.Message
}

func (c *capture) Send(_ context.Context, m providers.Message) (providers.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, m)
	return providers.Receipt{ID: "250 OK"}, nil
}

func prefsActivities(t *testing.T) (*activities.Activities, *capture) {
	critical, err := preferences.ParseCritical("security")
	require.NoError(t, err)
	cfg := preferences.Config{Critical: critical, Secret: "activities-test-secret-0123456789abcdef", PublicURL: "https://notify.example.com"}
	mail := &capture{}
	return &activities.Activities{
		Store:       dedup.New(redisServer.Client(t), time.Hour),
		Providers:   map[onceflow.Channel]providers.Provider{onceflow.Email: mail},
		Preferences: preferences.New(redisServer.Client(t), critical),
		Unsubscribe: cfg.Links(),
	}, mail
}

func emailInput(key, category string, due time.Time) activities.DeliverInput {
	d := onceflow.Delivery{Channel: onceflow.Email, To: "ada@example.com"}
	return activities.DeliverInput{Key: key, Tenant: "", DeliveryID: d.ID(key), Delivery: d, Body: "hi", Timestamp: due,
		Subscriber: "user-1", Category: category}
}

// Every attempt of a delivery sends the same List-Unsubscribe link: it
// depends on the notification's due time, not on the attempt's clock.
func TestUnsubscribeLinkIsTheSameOnEveryAttempt(t *testing.T) {
	acts, mail := prefsActivities(t)
	due := time.Now().Add(-time.Minute)
	for _, key := range []string{t.Name() + "-a", t.Name() + "-b"} {
		_, err := deliver(t, acts, emailInput(key, "news", due))
		require.NoError(t, err)
		time.Sleep(1100 * time.Millisecond)
	}
	require.Len(t, mail.sent, 2)
	assert.True(t, strings.HasPrefix(mail.sent[0].UnsubscribeURL, "https://notify.example.com/v1/unsubscribe/"), mail.sent[0].UnsubscribeURL)
	assert.Equal(t, mail.sent[0].UnsubscribeURL, mail.sent[1].UnsubscribeURL)

	for _, in := range []activities.DeliverInput{
		emailInput(t.Name()+"-critical", "security", due),
		func() activities.DeliverInput {
			in := emailInput(t.Name()+"-none", "", due)
			in.Subscriber = ""
			return in
		}(),
	} {
		_, err := deliver(t, acts, in)
		require.NoError(t, err)
	}
	require.Len(t, mail.sent, 4)
	assert.Empty(t, mail.sent[2].UnsubscribeURL, "a critical category has no unsubscribe link")
	assert.Empty(t, mail.sent[3].UnsubscribeURL, "no subscriber, no link")
}

func checkPreferences(acts *activities.Activities, in activities.PreferencesInput) (activities.PreferencesOutput, error) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(acts.CheckPreferences, in)
	var out activities.PreferencesOutput
	if err == nil {
		err = v.Get(&out)
	}
	return out, err
}

func TestCheckPreferencesReadsTheStore(t *testing.T) {
	acts, _ := prefsActivities(t)
	_, err := preferences.New(redisServer.Client(t), nil).Put(context.Background(), "acme", "user-5", preferences.Preferences{OptOuts: []preferences.OptOut{{Category: "*", Channel: "email"}}})
	require.NoError(t, err)
	in := activities.PreferencesInput{Tenant: "acme", Subscriber: "user-5", Category: "news", Channels: []onceflow.Channel{onceflow.Email, onceflow.Webhook}}
	out, err := checkPreferences(acts, in)
	require.NoError(t, err)
	assert.Equal(t, map[onceflow.Channel]string{onceflow.Email: `the subscriber opted out of category "news" on channel email; not sent`}, out.Skip)

	in.Category = "security"
	out, err = checkPreferences(acts, in)
	require.NoError(t, err)
	assert.Empty(t, out.Skip, "critical")

	in.Tenant = ""
	in.Category = "news"
	out, err = checkPreferences(acts, in)
	require.NoError(t, err)
	assert.Empty(t, out.Skip, "another tenant's user-5")
}

func TestCheckPreferencesFailsRetryablyWithoutRedis(t *testing.T) {
	acts, _ := prefsActivities(t)
	port, err := freeport.Get()
	require.NoError(t, err)
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	acts.Preferences = preferences.New(down, nil)
	_, err = checkPreferences(acts, activities.PreferencesInput{Subscriber: "user-5", Category: "news", Channels: []onceflow.Channel{onceflow.Email}})
	appErr := appError(t, err)
	assert.Equal(t, activities.TypePreferencesUnavailable, appErr.Type())
	assert.False(t, appErr.NonRetryable(), "retried until Redis answers: an unknown preference is not consent")
}
