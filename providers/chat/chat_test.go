package chat_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/chat"
)

// slack is a local server speaking the incoming-webhook and
// chat.postMessage request and error shapes.
type slack struct {
	mu     sync.Mutex
	bodies []map[string]string
	auth   []string
	// webhookAnswer and apiAnswer pick the replies.
	webhookAnswer func() (int, string)
	apiAnswer     func() (int, string, string)
}

func (s *slack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]string
	_ = json.Unmarshal(b, &body)
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.mu.Unlock()
	switch r.URL.Path {
	case "/services/T1/B1/x":
		code, text := 200, "ok"
		if s.webhookAnswer != nil {
			code, text = s.webhookAnswer()
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(text))
	case "/api/chat.postMessage":
		if r.Header.Get("Authorization") != "Bearer xoxb-test" {
			_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
			return
		}
		code, out, retryAfter := 200, `{"ok":true,"channel":"C123","ts":"1700000000.000100"}`, ""
		if s.apiAnswer != nil {
			code, out, retryAfter = s.apiAnswer()
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(out))
	default:
		w.WriteHeader(404)
	}
}

func newSlack(t *testing.T, token string) (*slack, *httptest.Server, *chat.Sender) {
	sl := &slack{}
	srv := httptest.NewServer(sl)
	t.Cleanup(srv.Close)
	s, err := chat.New(chat.Config{BotToken: token, APIURL: srv.URL + "/api"})
	require.NoError(t, err)
	return sl, srv, s
}

func msg(to string) providers.Message {
	return providers.Message{DeliveryID: "dlv_1", Key: "deploy-7", To: to, Subject: "Deploy 7", Body: "Deployed to production", Timestamp: time.Now()}
}

func TestIncomingWebhook(t *testing.T) {
	sl, srv, s := newSlack(t, "")
	receipt, err := s.Send(context.Background(), msg(srv.URL+"/services/T1/B1/x"))
	require.NoError(t, err)
	assert.NotEmpty(t, receipt.ID)
	assert.Equal(t, "*Deploy 7*\nDeployed to production", sl.bodies[0]["text"])
}

func TestPostMessageWithBotToken(t *testing.T) {
	sl, _, s := newSlack(t, "xoxb-test")
	receipt, err := s.Send(context.Background(), msg("C123"))
	require.NoError(t, err)
	assert.Equal(t, "slack C123 ts 1700000000.000100", receipt.ID)
	assert.Equal(t, "C123", sl.bodies[0]["channel"])
	assert.Equal(t, "Bearer xoxb-test", sl.auth[0])
}

func TestChannelWithoutTokenIsPermanent(t *testing.T) {
	_, _, s := newSlack(t, "")
	_, err := s.Send(context.Background(), msg("C123"))
	pe := providers.Classify(err)
	assert.True(t, pe.Permanent)
	assert.Contains(t, err.Error(), chat.EnvBotToken)
}

func TestErrorClassification(t *testing.T) {
	webhook := []struct {
		code      int
		text      string
		permanent bool
	}{
		{400, "invalid_payload", true},
		{403, "action_prohibited", true},
		{404, "channel_not_found", true},
		{410, "channel_is_archived", true},
	}
	for _, c := range webhook {
		t.Run("webhook "+c.text, func(t *testing.T) {
			sl, srv, s := newSlack(t, "")
			sl.webhookAnswer = func() (int, string) { return c.code, c.text }
			_, err := s.Send(context.Background(), msg(srv.URL+"/services/T1/B1/x"))
			pe := providers.Classify(err)
			assert.Equal(t, c.permanent, pe.Permanent)
			assert.False(t, pe.MaybeSent)
			assert.Contains(t, err.Error(), c.text)
		})
	}
	api := []struct {
		name       string
		code       int
		body       string
		retryAfter string
		permanent  bool
		wait       time.Duration
	}{
		{"channel_not_found", 200, `{"ok":false,"error":"channel_not_found"}`, "", true, 0},
		{"not_in_channel", 200, `{"ok":false,"error":"not_in_channel"}`, "", true, 0},
		{"internal_error", 200, `{"ok":false,"error":"internal_error"}`, "", false, 0},
		{"ratelimited", 429, `{"ok":false,"error":"ratelimited"}`, "30", false, 30 * time.Second},
	}
	for _, c := range api {
		t.Run("postMessage "+c.name, func(t *testing.T) {
			sl, _, s := newSlack(t, "xoxb-test")
			sl.apiAnswer = func() (int, string, string) { return c.code, c.body, c.retryAfter }
			_, err := s.Send(context.Background(), msg("C123"))
			pe := providers.Classify(err)
			assert.Equal(t, c.permanent, pe.Permanent, err)
			assert.Equal(t, c.wait, pe.RetryAfter)
			assert.False(t, pe.MaybeSent)
		})
	}
	t.Run("postMessage invalid_auth", func(t *testing.T) {
		_, _, s := newSlack(t, "xoxb-wrong")
		_, err := s.Send(context.Background(), msg("C123"))
		assert.True(t, providers.Classify(err).Permanent)
		assert.NotContains(t, err.Error(), "xoxb-wrong", "tokens never appear in errors")
	})
}
