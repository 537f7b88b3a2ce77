package activities_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/dedup"
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
		Critical:    critical,
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
