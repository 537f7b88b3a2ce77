package activities_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/chat"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/providers/sms"
)

// Receivers that echo what they were sent in their error answers: Twilio
// names the To number in its errors, a Slack-like hook here answers with
// the request. The delivery's failure, which becomes its reason, the
// worker's log lines and the Temporal history, holds neither the recipient
// nor the body.
func TestProviderErrorsDoNotEchoRecipientOrBody(t *testing.T) {
	const (
		phone = "+15551234567"
		body  = "Your one-time code is 424242. Do not share it with anyone;\nnot even us."
	)
	twilio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": 21211,
			"message": "The 'To' number " + r.Form.Get("To") + " (" + strings.TrimPrefix(r.Form.Get("To"), "+") + ") is not valid; body was: " + r.Form.Get("Body")})
	}))
	t.Cleanup(twilio.Close)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("invalid_payload: " + r.URL.String() + " " + string(b)))
	}))
	t.Cleanup(hook.Close)

	smsSender, err := sms.New(sms.Config{AccountSID: "AC1", AuthToken: "tok", From: "+15550000000", BaseURL: twilio.URL})
	require.NoError(t, err)
	chatSender, err := chat.New(chat.Config{}, egress.Guard{Allow: egress.Loopback()})
	require.NoError(t, err)
	acts, _ := setup(t, activities.Hold)
	acts.Providers = map[onceflow.Channel]providers.Provider{onceflow.SMS: smsSender, onceflow.Chat: chatSender}

	hookURL := hook.URL + "/services/T1/B1/" + url.PathEscape("s3cr3t-hook-path")
	for _, d := range []onceflow.Delivery{{Channel: onceflow.SMS, To: phone}, {Channel: onceflow.Chat, To: hookURL}} {
		t.Run(string(d.Channel), func(t *testing.T) {
			in := activities.DeliverInput{Key: t.Name(), DeliveryID: d.ID(t.Name()), Delivery: d,
				Subject: "Sign-in code", Body: body, Timestamp: time.Now()}
			_, err := deliver(t, acts, in)
			require.Error(t, err)
			appErr := appError(t, err)
			assert.Equal(t, activities.TypeRejected, appErr.Type(), err)
			msg := err.Error()
			for _, secret := range []string{phone, "15551234567", "424242", "one-time code", "Sign-in code", "s3cr3t-hook-path"} {
				assert.NotContains(t, msg, secret)
			}
			assert.Contains(t, msg, "HTTP 400", "the reason still says what failed")
		})
	}
}
