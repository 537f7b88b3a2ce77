package push_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/internal/wiretest"
	"github.com/onceflow/onceflow/providers/push"
)

// fcm is a local server speaking Google's OAuth2 JWT-bearer token endpoint
// and FCM's HTTP v1 messages:send, request and error shapes.
type fcm struct {
	key       *rsa.PublicKey
	mu        sync.Mutex
	tokens    int
	sent      []map[string]any
	answer    func() (int, string, string)
	badTokens bool
	// fault, when set, handles messages:send instead.
	fault http.HandlerFunc
}

func (f *fcm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/token":
		_ = r.ParseForm()
		if f.badTokens || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || !f.validJWT(r.PostForm.Get("assertion")) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`))
			return
		}
		f.mu.Lock()
		f.tokens++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"ya29.test","expires_in":3600,"token_type":"Bearer"}`))
	case "/v1/projects/shop-app/messages:send":
		if f.fault != nil {
			f.fault(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer ya29.test" {
			w.WriteHeader(401)
			return
		}
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		f.mu.Lock()
		f.sent = append(f.sent, body)
		f.mu.Unlock()
		code, out, retryAfter := 200, `{"name":"projects/shop-app/messages/0:1700000000%abc"}`, ""
		if f.answer != nil {
			code, out, retryAfter = f.answer()
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(out))
	default:
		w.WriteHeader(404)
	}
}

// validJWT checks the assertion's RS256 signature and its scope claim.
func (f *fcm) validJWT(assertion string) bool {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(f.key, crypto.SHA256, sum[:], sig) != nil {
		return false
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	return strings.Contains(string(claims), "firebase.messaging")
}

func newFCM(t *testing.T) (*fcm, *push.Sender) {
	f, creds, url := fcmServer(t)
	s, err := push.New(push.Config{CredentialsJSON: creds, Endpoint: url})
	require.NoError(t, err)
	return f, s
}

// serviceAccountKey is generated once: it is slow.
var serviceAccountKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

// fcmServer starts an FCM and returns it, a service-account key for it and
// its URL.
func fcmServer(t *testing.T) (*fcm, []byte, string) {
	key, err := serviceAccountKey()
	require.NoError(t, err)
	f := &fcm{key: &key.PublicKey}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	creds, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "shop-app", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "onceflow@shop-app.iam.gserviceaccount.com", "token_uri": srv.URL + "/token",
	})
	require.NoError(t, err)
	return f, creds, srv.URL
}

func msg() providers.Message {
	return providers.Message{DeliveryID: "dlv_42", Key: "order-42-shipped", To: "device-token-abc", Subject: "Shipped", Body: "Order 42 is on its way", Timestamp: time.Now()}
}

func TestSendUsesAServiceAccountTokenAndCollapseIDs(t *testing.T) {
	f, s := newFCM(t)
	for range 2 {
		receipt, err := s.Send(context.Background(), msg())
		require.NoError(t, err)
		assert.Equal(t, "projects/shop-app/messages/0:1700000000%abc", receipt.ID)
	}
	assert.Equal(t, 1, f.tokens, "the access token is reused")
	require.Len(t, f.sent, 2)
	m := f.sent[0]["message"].(map[string]any)
	assert.Equal(t, "device-token-abc", m["token"])
	assert.Equal(t, map[string]any{"title": "Shipped", "body": "Order 42 is on its way"}, m["notification"])
	assert.Equal(t, "dlv_42", m["android"].(map[string]any)["collapse_key"])
	assert.Equal(t, "dlv_42", m["apns"].(map[string]any)["headers"].(map[string]any)["apns-collapse-id"])
	assert.Equal(t, "dlv_42", m["data"].(map[string]any)["onceflow_delivery_id"])
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		name       string
		code       int
		body       string
		retryAfter string
		permanent  bool
		wait       time.Duration
	}{
		{"unregistered", 404, `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`, "", true, 0},
		{"invalid argument", 400, `{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"errorCode":"INVALID_ARGUMENT"}]}}`, "", true, 0},
		{"quota exceeded", 429, `{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"errorCode":"QUOTA_EXCEEDED"}]}}`, "60", false, time.Minute},
		{"unavailable", 503, `{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}`, "", false, 0},
		{"internal", 500, `{"error":{"code":500,"message":"Internal error","status":"INTERNAL","details":[{"errorCode":"INTERNAL"}]}}`, "", false, 0},
		{"quota exceeded without Retry-After", 429, `{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"errorCode":"QUOTA_EXCEEDED"}]}}`, "", false, time.Minute},
		{"quota exceeded, a short Retry-After", 429, `{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"errorCode":"QUOTA_EXCEEDED"}]}}`, "5", false, time.Minute},
		{"unavailable with Retry-After", 503, `{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE","details":[{"errorCode":"UNAVAILABLE"}]}}`, "30", false, 30 * time.Second},
		{"sender ID mismatch", 403, `{"error":{"code":403,"message":"SenderId mismatch","status":"PERMISSION_DENIED","details":[{"errorCode":"SENDER_ID_MISMATCH"}]}}`, "", true, 0},
		{"third-party auth error", 401, `{"error":{"code":401,"message":"Auth error from APNS or Web Push Service","status":"UNAUTHENTICATED","details":[{"errorCode":"THIRD_PARTY_AUTH_ERROR"}]}}`, "", true, 0},
		{"unspecified error", 500, `{"error":{"code":500,"message":"Unknown","status":"UNKNOWN","details":[{"errorCode":"UNSPECIFIED_ERROR"}]}}`, "", false, 0},
		{"unspecified error with a 400", 400, `{"error":{"code":400,"message":"Unknown","status":"FAILED_PRECONDITION","details":[{"errorCode":"UNSPECIFIED_ERROR"}]}}`, "", false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, s := newFCM(t)
			f.answer = func() (int, string, string) { return c.code, c.body, c.retryAfter }
			_, err := s.Send(context.Background(), msg())
			pe := providers.Classify(err)
			assert.Equal(t, c.permanent, pe.Permanent, err)
			assert.Equal(t, c.wait, pe.RetryAfter)
			assert.False(t, pe.MaybeSent)
		})
	}
	t.Run("refused key sends nothing", func(t *testing.T) {
		f, s := newFCM(t)
		f.badTokens = true
		_, err := s.Send(context.Background(), msg())
		pe := providers.Classify(err)
		assert.True(t, pe.Permanent, err)
		assert.False(t, pe.MaybeSent)
		assert.Empty(t, f.sent)
		assert.NotContains(t, err.Error(), "PRIVATE KEY")
	})
}

func TestNewRejectsWhatIsNotAKey(t *testing.T) {
	_, err := push.New(push.Config{CredentialsJSON: []byte(`{"type":"authorized_user"}`)})
	assert.ErrorContains(t, err, push.EnvCredentialsFile)
}

// TestWhatWentOverTheWire: whether a failed push may have reached the
// device is decided from what reached FCM. A re-sent push carries the same
// collapse IDs and replaces the first, so a 5xx is FCM saying it failed:
// retried, not possibly sent. A failure after the whole request was written
// may have sent.
func TestWhatWentOverTheWire(t *testing.T) {
	fcmErr := func(code int, status string) string {
		return `{"error":{"code":` + strconv.Itoa(code) + `,"message":"` + http.StatusText(code) + `","status":"` + status + `"}}`
	}
	rows := []struct {
		name       string
		refused    bool
		fault      http.HandlerFunc
		code       int
		body       string
		retryAfter string
		large      bool
		maybeSent  bool
		wait       time.Duration
	}{
		{name: "connection refused", refused: true},
		{name: "reset before the body was read", fault: wiretest.ResetBeforeBody, large: true},
		{name: "reset after the request was read", fault: wiretest.ResetAfterBody, maybeSent: true},
		{name: "no answer after the request was read", fault: wiretest.Silent, maybeSent: true},
		{name: "500", code: 500, body: fcmErr(500, "INTERNAL")},
		{name: "502", code: 502, body: `<html>502 Bad Gateway</html>`},
		{name: "504", code: 504, body: fcmErr(504, "DEADLINE_EXCEEDED")},
		{name: "408", code: 408, body: fcmErr(408, "DEADLINE_EXCEEDED"), retryAfter: "5", wait: 5 * time.Second},
		{name: "429", code: 429, body: fcmErr(429, "RESOURCE_EXHAUSTED"), retryAfter: "60", wait: time.Minute},
		{name: "503", code: 503, body: fcmErr(503, "UNAVAILABLE"), retryAfter: "30", wait: 30 * time.Second},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			f, creds, endpoint := fcmServer(t)
			f.fault = r.fault
			f.answer = func() (int, string, string) { return r.code, r.body, r.retryAfter }
			if r.refused {
				endpoint = wiretest.Refused(t)
			}
			s, err := push.New(push.Config{CredentialsJSON: creds, Endpoint: endpoint})
			require.NoError(t, err)
			wiretest.Send(t, s, msg(), r.large, r.maybeSent, r.wait)
		})
	}
}
