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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
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
	key, err := rsa.GenerateKey(rand.Reader, 2048)
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
	s, err := push.New(push.Config{CredentialsJSON: creds, Endpoint: srv.URL})
	require.NoError(t, err)
	return f, s
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
