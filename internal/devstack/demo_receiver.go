package devstack

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/onceflow/onceflow/providers/webhook"
)

// DemoWebhookPath is where the dev stack's API also receives webhooks, so
// that a first notification has somewhere to go.
const DemoWebhookPath = "/dev/webhook"

// demoReceiver verifies a webhook's Standard Webhooks signature, as a
// partner's receiver would, and logs what arrived.
func demoReceiver(secret string, log *slog.Logger) http.Handler {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		id := r.Header.Get("webhook-id")
		sec, err := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
		want := webhook.Sign(key, id, time.Unix(sec, 0), body)
		if err != nil || !hmac.Equal([]byte(want), []byte(r.Header.Get("webhook-signature"))) {
			log.Warn("Demo receiver: bad webhook signature", "webhook_id", id)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p webhook.Payload
		_ = json.Unmarshal(body, &p)
		log.Info("Demo receiver: webhook received, signature valid", "webhook_id", id, "key", p.Data.Key, "subject", p.Data.Subject)
		w.WriteHeader(http.StatusNoContent)
	})
}
