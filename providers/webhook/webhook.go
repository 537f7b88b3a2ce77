// Package webhook delivers notifications as HTTP POSTs of a JSON body,
// signed per the Standard Webhooks specification.
//
// Every attempt of one delivery carries the same body, the same webhook-id
// and the same Idempotency-Key (the delivery ID), so a receiver that keeps
// the IDs it has applied applies each delivery once. A receiver that answers
// a repeat with "Idempotent-Replayed: true" tells Onceflow so, which turns
// an ambiguous re-send into a confirmed single delivery.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/egress"
)

// SecretEnv names the environment variable that holds the signing secret.
const SecretEnv = "ONCEFLOW_WEBHOOK_SECRET"

// Payload is the JSON body of every webhook Onceflow sends.
type Payload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// Data is the notification inside a Payload.
type Data struct {
	Key     string `json:"key"`
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body"`
}

// Sender posts webhooks.
type Sender struct {
	client *http.Client
	keys   [][]byte
	now    func() time.Time
}

// New returns a Sender that signs with secret, given as Standard Webhooks
// secrets are: base64, optionally behind a "whsec_" prefix; or with
// several, comma-separated, while rotating (ParseSecrets). Webhook URLs
// are the callers', so every address the Sender connects to must pass
// guard; the zero Guard refuses loopback, private, link-local and the
// other internal networks. Redirects are never followed.
func New(secret string, guard egress.Guard) (*Sender, error) {
	if secret == "" {
		return nil, fmt.Errorf("webhook: %s is empty; set it to a signing secret such as whsec_%s", SecretEnv, base64.StdEncoding.EncodeToString([]byte("change-me-to-24-random-bytes")))
	}
	keys, err := ParseSecrets(secret)
	if err != nil {
		return nil, err
	}
	return &Sender{client: providers.NewGuardedHTTPClient(guard), keys: keys, now: time.Now}, nil
}

// ParseSecret decodes a Standard Webhooks secret: base64, optionally behind
// a "whsec_" prefix, at least 16 bytes.
func ParseSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return nil, fmt.Errorf("webhook: %s is not base64 after the whsec_ prefix: %w", SecretEnv, err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("webhook: %s decodes to %d bytes; use at least 16 random bytes", SecretEnv, len(key))
	}
	return key, nil
}

// Verify checks a received webhook's signature as a receiver does: the
// webhook-signature header must hold the v1 signature of its webhook-id,
// webhook-timestamp and body under key.
func Verify(key []byte, h http.Header, body []byte) bool {
	sec, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		return false
	}
	want := Sign(key, h.Get("webhook-id"), time.Unix(sec, 0), body)
	for _, got := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(want), []byte(got)) {
			return true
		}
	}
	return false
}

// Sign returns the Standard Webhooks signature header value for one
// request: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body".
func Sign(key []byte, id string, timestamp time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, timestamp.Unix())
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// api reads no more of a receiver's answer than its status needs.
var api = providers.API{Name: "webhook", Receiver: providers.Keyed, MaxBody: providers.CallerMaxBody, TraceContext: true}

// Send posts m to the URL in m.To. Every failure is a *providers.Error.
func (s *Sender) Send(ctx context.Context, m providers.Message) (providers.Receipt, error) {
	body, err := json.Marshal(Payload{
		Type:      "notification",
		Timestamp: m.Timestamp.UTC(),
		Data:      Data{Key: m.Key, Subject: m.Subject, Body: m.Body},
	})
	if err != nil {
		return providers.Receipt{}, &providers.Error{Permanent: true, Err: fmt.Errorf("webhook: encode payload: %w", err)}
	}
	// The body is wrapped so that net/http cannot rewind it: otherwise,
	// because of the Idempotency-Key header, it would silently re-send the
	// request when a kept-alive connection breaks, a re-send that Onceflow
	// could neither see nor report.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.To, io.NopCloser(bytes.NewReader(body)))
	if err != nil {
		return providers.Receipt{}, &providers.Error{Permanent: true, Err: fmt.Errorf("webhook: bad URL: %w", err)}
	}
	req.ContentLength = int64(len(body))
	now := s.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Onceflow")
	req.Header.Set("Idempotency-Key", m.DeliveryID)
	req.Header.Set("webhook-id", m.DeliveryID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", SignAll(s.keys, m.DeliveryID, now, body))

	resp, err := providers.DoHTTP(s.client, req, api)
	if err != nil {
		return providers.Receipt{}, err
	}
	return providers.Receipt{
		ID:       "HTTP " + strconv.Itoa(resp.Status),
		Replayed: strings.EqualFold(resp.Header.Get("Idempotent-Replayed"), "true"),
	}, nil
}
