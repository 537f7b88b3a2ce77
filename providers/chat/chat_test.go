package chat_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/chat"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/providers/internal/wiretest"
)

// slack is a local server speaking the incoming-webhook and
// chat.postMessage request and error shapes.
type slack struct {
	mu     sync.Mutex
	bodies []map[string]any
	auth   []string
	// webhookAnswer and apiAnswer pick the replies.
	webhookAnswer func() (int, string, string)
	apiAnswer     func() (int, string, string)
	// history answers conversations.history's query.
	history func(q url.Values) (int, string, string)
}

func (s *slack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.mu.Unlock()
	switch r.URL.Path {
	case "/services/T1/B1/x":
		code, text, retryAfter := 200, "ok", ""
		if s.webhookAnswer != nil {
			code, text, retryAfter = s.webhookAnswer()
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
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
	case "/api/conversations.history":
		if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer xoxb-test" {
			_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
			return
		}
		code, out, retryAfter := s.history(r.URL.Query())
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(out))
	default:
		w.WriteHeader(404)
	}
}

// loopback lets incoming webhooks on these tests' servers, on 127.0.0.1,
// be reached.
var loopback = egress.Guard{Allow: egress.Loopback()}

func newSlack(t *testing.T, token string) (*slack, *httptest.Server, *chat.Sender) {
	sl := &slack{}
	srv := httptest.NewServer(sl)
	t.Cleanup(srv.Close)
	s, err := chat.New(chat.Config{BotToken: token, APIURL: srv.URL + "/api"}, loopback)
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
	assert.Equal(t, map[string]any{"event_type": "onceflow_delivery", "event_payload": map[string]any{"delivery_id": "dlv_1"}},
		sl.bodies[0]["metadata"], "the delivery ID rides in Slack's message metadata, for Lookup")
}

// TestOnlyIncomingWebhooksAreGuarded: an incoming-webhook URL is the
// caller's, and one that leads inward is refused; the Web API's base URL
// is the operator's, and is dialled wherever it is.
func TestOnlyIncomingWebhooksAreGuarded(t *testing.T) {
	sl := &slack{}
	srv := httptest.NewServer(sl)
	t.Cleanup(srv.Close)
	s, err := chat.New(chat.Config{BotToken: "xoxb-test", APIURL: srv.URL + "/api"}, egress.Guard{})
	require.NoError(t, err)

	_, err = s.Send(context.Background(), msg("C123"))
	require.NoError(t, err, "the Web API on loopback is reached")
	wiretest.RefusesInward(t, s, msg(""), wiretest.ListenInward(t), "/services/T1/B1/x")
	_, err = s.Send(context.Background(), msg(srv.URL+"/services/T1/B1/x"))
	assert.ErrorContains(t, err, "chat: destination 127.0.0.1 is a loopback address; refused by the egress guard (allow it with ONCEFLOW_EGRESS_ALLOW=127.0.0.0/8)")
	assert.Len(t, sl.bodies, 1, "only the Web API call reached the server")
}

// TestIncomingWebhookAnswerIsExcerpted: an incoming webhook's error answer
// is the caller's text. The reason keeps a short excerpt of it, without
// control characters, from the first few KiB.
func TestIncomingWebhookAnswerIsExcerpted(t *testing.T) {
	for _, c := range []struct {
		name, body, want string
	}{
		{"escapes and overrides", "\x1b[31minvalid_payload\x1b[0m\r\nforged: line\u202e\x00", "chat: receiver answered HTTP 400 Bad Request: [31minvalid_payload[0m forged: line"},
		{"long", strings.Repeat("no_text ", 1<<17), "chat: receiver answered HTTP 400 Bad Request: " + strings.Repeat("no_text ", 24) + "no_te…"},
		{"beyond the first KiBs", strings.Repeat(" ", 8<<10) + "secret_token", "chat: receiver answered HTTP 400 Bad Request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sl := &slack{webhookAnswer: func() (int, string, string) { return 400, c.body, "" }}
			srv := httptest.NewServer(sl)
			t.Cleanup(srv.Close)
			s, err := chat.New(chat.Config{}, loopback)
			require.NoError(t, err)
			_, err = s.Send(context.Background(), msg(srv.URL+"/services/T1/B1/x"))
			require.Error(t, err)
			assert.Equal(t, c.want, err.Error())
			assert.True(t, providers.Classify(err).Permanent)
		})
	}
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
		{400, "user_not_found", true},
		{400, "no_text", true},
		{400, "too_many_attachments", true},
		{400, "no_service_id", true},
		{403, "invalid_token", true},
		{403, "posting_to_general_channel_denied", true},
		{404, "no_service", true},
		{404, "no_team", true},
		{404, "team_disabled", true},
	}
	for _, c := range webhook {
		t.Run("webhook "+c.text, func(t *testing.T) {
			sl, srv, s := newSlack(t, "")
			sl.webhookAnswer = func() (int, string, string) { return c.code, c.text, "" }
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

// TestWhatWentOverTheWire: whether a failed send may have posted is decided
// from what reached Slack, for incoming webhooks and chat.postMessage
// alike. Slack takes no idempotency key, so a 500, 502 or 504 (a gateway
// may have passed the request on) may have posted, like a failure after
// the whole request was written.
func TestWhatWentOverTheWire(t *testing.T) {
	type row struct {
		name string
		// fault, when set, is how the server treats the request;
		// otherwise Slack answers code, body and Retry-After.
		fault      http.HandlerFunc
		refused    bool
		code       int
		body       string
		retryAfter string
		large      bool
		maybeSent  bool
		wait       time.Duration
	}
	rows := []row{
		{name: "connection refused", refused: true},
		{name: "reset before the body was read", fault: wiretest.ResetBeforeBody, large: true},
		{name: "reset after the request was read", fault: wiretest.ResetAfterBody, maybeSent: true},
		{name: "no answer after the request was read", fault: wiretest.Silent, maybeSent: true},
		{name: "500", code: 500, body: "rollup_error", maybeSent: true},
		{name: "502", code: 502, body: "<html>Bad Gateway</html>", maybeSent: true},
		{name: "504", code: 504, body: "<html>Gateway Timeout</html>", maybeSent: true},
		{name: "408", code: 408, body: "request_timeout", retryAfter: "5", wait: 5 * time.Second},
		{name: "429", code: 429, body: "rate_limited", retryAfter: "30", wait: 30 * time.Second},
		{name: "503", code: 503, body: "service_unavailable", retryAfter: "60", wait: time.Minute},
	}
	// baseURL is where the row's Slack listens.
	baseURL := func(t *testing.T, r row, sl *slack) string {
		switch {
		case r.refused:
			return wiretest.Refused(t)
		case r.fault != nil:
			return wiretest.Serve(t, r.fault)
		}
		srv := httptest.NewServer(sl)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	for _, r := range rows {
		t.Run("webhook "+r.name, func(t *testing.T) {
			sl := &slack{webhookAnswer: func() (int, string, string) { return r.code, r.body, r.retryAfter }}
			s, err := chat.New(chat.Config{}, loopback)
			require.NoError(t, err)
			wiretest.Send(t, s, msg(baseURL(t, r, sl)+"/services/T1/B1/x"), r.large, r.maybeSent, r.wait)
		})
		t.Run("postMessage "+r.name, func(t *testing.T) {
			body := `{"ok":false,"error":"` + r.body + `"}`
			sl := &slack{apiAnswer: func() (int, string, string) { return r.code, body, r.retryAfter }}
			s, err := chat.New(chat.Config{BotToken: "xoxb-test", APIURL: baseURL(t, r, sl) + "/api"}, loopback)
			require.NoError(t, err)
			wiretest.Send(t, s, msg("C123"), r.large, r.maybeSent, r.wait)
		})
	}
}
