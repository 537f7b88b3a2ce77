package devstack

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"

	"github.com/onceflow/onceflow/providers/webhook"
)

// DemoWebhookPath is where the dev stack's API also receives webhooks, so
// that a first notification has somewhere to go.
const DemoWebhookPath = "/dev/webhook"

// demoReceiver verifies a webhook's Standard Webhooks signature, as a
// partner's receiver would, and logs what arrived.
func demoReceiver(secret string, log *slog.Logger) http.Handler {
	keys, err := webhook.ParseSecrets(secret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, rerr := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if rerr != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		id := r.Header.Get("webhook-id")
		if err != nil || !slices.ContainsFunc(keys, func(key []byte) bool { return webhook.Verify(key, r.Header, body) }) {
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
