//go:build linux

package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/chat"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/providers/email"
	"github.com/onceflow/onceflow/providers/sms"
)

// Each SMTP fault reaches Onceflow's email provider as the failure it
// stands for, and the mailbox holds what the relay took in.
func TestSMTPRelayFaultsAsTheEmailProviderSeesThem(t *testing.T) {
	for _, tc := range []struct {
		name      string
		faults    Faults
		maybeSent bool
		sent      bool
		copies    int
	}{
		{"none", Faults{}, false, true, 1},
		{fault451, Faults{ServerError: 1}, false, false, 0},
		{fault421, Faults{TooMany: 1}, false, false, 0},
		{faultDrop, Faults{Reset: 1}, true, false, 1},
		{faultSlowData, Faults{Slow: 1}, true, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const rcpt, id = "ada@mail.chaos.example", "dlv_1"
			relay, err := startSMTP(plan{seed: 1, faults: tc.faults}, 3*time.Second, func(r string) (string, bool) { return id, r == rcpt })
			require.NoError(t, err)
			t.Cleanup(relay.close)
			s, err := email.New(email.Config{Addr: relay.addr(), From: "notify@chaos.example", TLS: "none"})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err = s.Send(ctx, providers.Message{DeliveryID: id, Key: "k", To: rcpt, Subject: "s", Body: "b", Timestamp: time.Now()})
			if tc.sent {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Equal(t, tc.maybeSent, providers.Classify(err).MaybeSent, "%v", err)
			}
			seen, faults, invalid := relay.ledger.snapshot()
			assert.Empty(t, invalid)
			assert.Equal(t, tc.copies, seen[rcpt].Effects, "copies in the mailbox")
			if tc.name != "none" {
				assert.Equal(t, 1, faults[tc.name])
			}
		})
	}
}

// The Twilio fake applies a request it answers 502 after applying, and
// Onceflow's SMS provider takes that answer as a possible send.
func TestTwilioFakeAppliesThenFails(t *testing.T) {
	a := &apiServers{expectSMS: func(string) (string, bool) { return "hello", true }}
	require.NoError(t, startAPIs(plan{seed: 1, faults: Faults{AppliedError: 1}}, time.Second, a))
	t.Cleanup(func() { _ = a.srv.Close() })
	s, err := sms.New(sms.Config{AccountSID: twilioSID, AuthToken: twilioToken, From: twilioFrom, BaseURL: a.url})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), providers.Message{DeliveryID: "dlv_1", To: "+15550000001", Body: "hello"})
	require.Error(t, err)
	assert.True(t, providers.Classify(err).MaybeSent, "%v", err)
	seen, faults, invalid := a.sms.ledger.snapshot()
	assert.Empty(t, invalid)
	assert.Equal(t, 1, seen["+15550000001"].Effects, "the phone got it")
	assert.Equal(t, 1, faults[faultApplied5xx])
}

// The Twilio and Slack fakes answer lookups as the real APIs do, as
// Onceflow's providers read them: a message the fake took in (here with a
// 502 after applying it) is found by its body or its metadata, newer than
// since; one it never took is not, and paging reaches every message.
func TestLookupFakesAnswerTheProviders(t *testing.T) {
	const num, channel = "+15550000001", "C00000001"
	const body, text = "hello", "*s*\nhello"
	a := &apiServers{
		expectSMS:      func(to string) (string, bool) { return body, to == num },
		expectChat:     func(ch string) (string, bool) { return text, ch == channel },
		chatDeliveryID: func(string) string { return "dlv_chat" },
	}
	require.NoError(t, startAPIs(plan{seed: 1, faults: Faults{AppliedError: 1}}, time.Second, a))
	t.Cleanup(func() { _ = a.srv.Close() })
	since := time.Now().Add(-time.Minute)

	s, err := sms.New(sms.Config{AccountSID: twilioSID, AuthToken: twilioToken, From: twilioFrom, BaseURL: a.url})
	require.NoError(t, err)
	m := providers.Message{DeliveryID: "dlv_sms", To: num, Body: body, Timestamp: time.Now()}
	_, found, err := s.Lookup(context.Background(), m, since)
	require.NoError(t, err)
	assert.False(t, found, "nothing sent yet")
	// Many older copies to another sender would need paging; here many
	// copies of the same text: the newest is found on the first page.
	_, err = s.Send(context.Background(), m)
	require.Error(t, err)
	r, found, err := s.Lookup(context.Background(), m, since)
	require.NoError(t, err)
	assert.True(t, found)
	seen, _, _ := a.sms.ledger.snapshot()
	assert.Equal(t, []string{r.ID}, seen[num].IDs)
	_, found, err = s.Lookup(context.Background(), m, time.Now().Add(time.Minute))
	require.NoError(t, err)
	assert.False(t, found, "older than since")
	_, found, err = s.Lookup(context.Background(), providers.Message{To: num, Body: "other"}, since)
	require.NoError(t, err)
	assert.False(t, found, "another body")

	c, err := chat.New(chat.Config{BotToken: slackToken, APIURL: a.url + "/api"}, egress.Guard{Allow: egress.Loopback()})
	require.NoError(t, err)
	cm := providers.Message{DeliveryID: "dlv_chat", To: channel, Subject: "s", Body: "hello", Timestamp: time.Now()}
	_, found, err = c.Lookup(context.Background(), cm, since)
	require.NoError(t, err)
	assert.False(t, found, "nothing posted yet")
	_, err = c.Send(context.Background(), cm)
	require.Error(t, err)
	r, found, err = c.Lookup(context.Background(), cm, since)
	require.NoError(t, err)
	assert.True(t, found)
	seen, _, invalid := a.chat.ledger.snapshot()
	assert.Empty(t, invalid)
	assert.Equal(t, []string{r.ID}, seen[channel].IDs)
	_, found, err = c.Lookup(context.Background(), providers.Message{DeliveryID: "dlv_other", To: channel}, since)
	require.NoError(t, err)
	assert.False(t, found, "another delivery ID")
	_, found, err = c.Lookup(context.Background(), cm, time.Now().Add(time.Minute))
	require.NoError(t, err)
	assert.False(t, found, "older than oldest")
}

func TestFakePaging(t *testing.T) {
	list := []int{1, 2, 3, 4, 5}
	var got []int
	for tok, first := "", true; first || tok != ""; first = false {
		var p []int
		p, tok = page(list, tok, 2)
		got = append(got, p...)
	}
	assert.Equal(t, list, got)
}
