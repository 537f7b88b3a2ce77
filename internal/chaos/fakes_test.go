//go:build linux

package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
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
