package starter_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/providers/chat"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/providers/email"
	"github.com/onceflow/onceflow/providers/push"
	"github.com/onceflow/onceflow/providers/sms"
	"github.com/onceflow/onceflow/redisconn"
	"github.com/onceflow/onceflow/worker"
)

// inbox records what reached each channel's local server.
type inbox struct {
	mu   sync.Mutex
	mail []string
	sms  []url.Values
	chat []string
	push []string
}

func (in *inbox) add(f func()) { in.mu.Lock(); f(); in.mu.Unlock() }

type smtpSession struct{ in *inbox }

func (s smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.in.add(func() { s.in.mail = append(s.in.mail, string(b)) })
	return err
}
func (s smtpSession) Reset()        {}
func (s smtpSession) Logout() error { return nil }

// channelServers starts a real SMTP server and local servers speaking the
// Twilio, Slack webhook, Google token and FCM APIs, and returns the worker
// configuration that points at them and the Slack incoming-webhook URL.
func channelServers(t *testing.T, in *inbox, failSMS bool) (cfg worker.Config, slackHook string) {
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return smtpSession{in}, nil }))
	srv.Domain = "localhost"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/AC1/Messages.json", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if failSMS {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"code":21211,"message":"The 'To' number is not a valid phone number."}`))
			return
		}
		in.add(func() { in.sms = append(in.sms, r.PostForm) })
		w.WriteHeader(201)
		_, _ = w.Write([]byte(`{"sid":"SM1"}`))
	})
	mux.HandleFunc("POST /slack/hook", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		in.add(func() { in.chat = append(in.chat, body["text"]) })
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"ya29.e2e","expires_in":3600,"token_type":"Bearer"}`))
	})
	mux.HandleFunc("POST /v1/projects/e2e/messages:send", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		in.add(func() { in.push = append(in.push, string(b)) })
		_, _ = w.Write([]byte(`{"name":"projects/e2e/messages/1"}`))
	})
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	creds, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "e2e", "client_email": "e2e@e2e.iam.gserviceaccount.com",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "token_uri": api.URL + "/token",
	})
	require.NoError(t, err)

	return worker.Config{
		Config:        redisconn.Config{RedisURL: "redis://" + servers.Redis.Addr + "/0"},
		WebhookSecret: testenv.WebhookSecret,
		Email:         []email.Config{{Addr: l.Addr().String(), From: "notify@shop.example", TLS: "none"}},
		SMS:           []sms.Config{{AccountSID: "AC1", AuthToken: "token", From: "+15005550006", BaseURL: api.URL}},
		Chat:          &chat.Config{},
		Push:          &push.Config{CredentialsJSON: creds, Endpoint: api.URL},
		DedupWindow:   time.Hour,
		EgressAllow:   egress.Loopback(),
	}, api.URL + "/slack/hook"
}

func TestEveryChannelEndToEnd(t *testing.T) {
	var in inbox
	cfg, slackHook := channelServers(t, &in, false)
	hook := testenv.NewReceiver(t)
	s := servers.New(t, cfg, nil)
	n := onceflow.Notification{
		Key: "every-channel-1", Subject: "Order 9 shipped", Body: "Your order is on its way.",
		Deliveries: []onceflow.Delivery{
			{Channel: onceflow.Webhook, To: hook.URL},
			{Channel: onceflow.Email, To: "ada@example.com"},
			{Channel: onceflow.SMS, To: "+447700900123"},
			{Channel: onceflow.Chat, To: slackHook},
			{Channel: onceflow.Push, To: "device-token-1"},
		},
	}
	_, err := s.Client.Send(ctxFor(t), n)
	require.NoError(t, err)
	res, err := s.Client.Wait(ctxFor(t), n.Key)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, len(n.Deliveries))
	for _, d := range res.Deliveries {
		assert.Equal(t, onceflow.Delivered, d.Status, "%s: %s", d.Channel, d.Reason)
	}
	assert.Len(t, hook.Headers(), 1)
	require.Len(t, in.mail, 1)
	assert.Contains(t, in.mail[0], "Message-ID: <"+n.Deliveries[1].ID(n.Key)+"@shop.example>")
	require.Len(t, in.sms, 1)
	assert.Equal(t, "Your order is on its way.", in.sms[0].Get("Body"))
	assert.Equal(t, []string{"*Order 9 shipped*\nYour order is on its way."}, in.chat)
	require.Len(t, in.push, 1)
	assert.Contains(t, in.push[0], n.Deliveries[4].ID(n.Key), "the delivery ID is the collapse key")
	assert.Equal(t, "projects/e2e/messages/1", res.Deliveries[4].Receipt)

	// Sent again after its workflow is gone: every channel is suppressed.
	run := startNewRun(t, s.TC, s.Queue, n)
	var again onceflow.Result
	require.NoError(t, run.Get(ctxFor(t), &again))
	require.Len(t, again.Deliveries, len(n.Deliveries))
	for _, d := range again.Deliveries {
		assert.Equal(t, onceflow.Suppressed, d.Status, d.Channel)
	}
	assert.Len(t, in.mail, 1)
	assert.Len(t, in.sms, 1)
	assert.Len(t, in.chat, 1)
	assert.Len(t, in.push, 1)
}

func TestPermanentSMSFailureIsReportedWithTwiliosReason(t *testing.T) {
	var in inbox
	cfg, _ := channelServers(t, &in, true)
	s := servers.New(t, cfg, nil)
	n := onceflow.Notification{Key: "sms-bad-number", Body: "Your code is 123456",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.SMS, To: "+447700900123"}}}
	_, d := sendAndWait(t, s, n)
	assert.Equal(t, onceflow.Failed, d.Status)
	assert.Contains(t, d.Reason, "21211")
	assert.EqualValues(t, 1, d.Attempts, "a 400 is not retried")
}

func templatesDir(t *testing.T) string {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"subject.tmpl": "Order {{.order}} shipped",
		"text.tmpl":    "Hi {{.name}}, order {{.order}} is on its way.",
		"html.tmpl":    "<p>Hi {{.name}}, order <b>{{.order}}</b> is on its way.</p>",
		"short.tmpl":   "Order {{.order}} shipped",
	} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "order-shipped"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "order-shipped", name), []byte(content), 0o644))
	}
	return dir
}

func TestTemplatesRenderOncePerChannel(t *testing.T) {
	var in inbox
	cfg, _ := channelServers(t, &in, false)
	cfg.TemplatesDir = templatesDir(t)
	hook := testenv.NewReceiver(t)
	s := servers.New(t, cfg, nil)
	n := onceflow.Notification{
		Key: "templated-1", Template: "order-shipped", Data: map[string]any{"name": "Ada <admin>", "order": 42},
		Deliveries: []onceflow.Delivery{
			{Channel: onceflow.Email, To: "ada@example.com"},
			{Channel: onceflow.SMS, To: "+447700900123"},
			{Channel: onceflow.Webhook, To: hook.URL},
		},
	}
	_, err := s.Client.Send(ctxFor(t), n)
	require.NoError(t, err)
	res, err := s.Client.Wait(ctxFor(t), n.Key)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, len(n.Deliveries))
	for _, d := range res.Deliveries {
		assert.Equal(t, onceflow.Delivered, d.Status, "%s: %s", d.Channel, d.Reason)
	}
	require.Len(t, in.mail, 1)
	assert.Contains(t, in.mail[0], "Subject: Order 42 shipped")
	assert.Contains(t, in.mail[0], "Hi Ada &lt;admin&gt;, order <b>42</b>", "HTML escaped where it must be")
	assert.Contains(t, in.mail[0], "Hi Ada <admin>, order 42 is on its way.", "the text part is not escaped")
	require.Len(t, in.sms, 1)
	assert.Equal(t, "Order 42 shipped", in.sms[0].Get("Body"), "SMS takes the short body")
}

func TestMissingTemplateVariableFailsBeforeAnyDelivery(t *testing.T) {
	var in inbox
	cfg, _ := channelServers(t, &in, false)
	cfg.TemplatesDir = templatesDir(t)
	hook := testenv.NewReceiver(t)
	s := servers.New(t, cfg, nil)
	n := onceflow.Notification{
		Key: "templated-missing", Template: "order-shipped", Data: map[string]any{"order": 42},
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Email, To: "ada@example.com"}, {Channel: onceflow.Webhook, To: hook.URL}},
	}
	started, err := s.Client.Send(ctxFor(t), n)
	require.NoError(t, err)
	res, err := s.Client.Wait(ctxFor(t), n.Key)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, len(n.Deliveries))
	for _, d := range res.Deliveries {
		assert.Equal(t, onceflow.Failed, d.Status)
		assert.Contains(t, d.Reason, `template "order-shipped" needs variable "name"`)
	}
	assert.Empty(t, in.mail)
	assert.Empty(t, hook.Headers())
	testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "template_missing_variable")
}

func TestFailingSMSFallsBackToEmail(t *testing.T) {
	var in inbox
	cfg, _ := channelServers(t, &in, true)
	s := servers.New(t, cfg, nil)
	n := onceflow.Notification{Key: "otp-fallback", Subject: "Your code", Body: "Your code is 123456",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.SMS, To: "+447700900123",
			Fallback: []onceflow.Delivery{{Channel: onceflow.Email, To: "ada@example.com"}}}}}
	started, d := sendAndWait(t, s, n)

	assert.Equal(t, onceflow.Failed, d.Status)
	assert.Contains(t, d.Reason, "21211")
	require.Len(t, d.Fallbacks, 1)
	assert.Equal(t, onceflow.Email, d.Fallbacks[0].Channel)
	assert.Equal(t, onceflow.Delivered, d.Fallbacks[0].Status, d.Fallbacks[0].Reason)
	assert.Len(t, in.mail, 1)
	assert.Empty(t, in.sms)

	st, err := s.Client.Status(ctxFor(t), n.Key)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, st.Result.Status(), "the status query shows the fallback")
	require.Len(t, st.Result.Deliveries[0].Fallbacks, 1)
	testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "sms_falls_back_to_email")

	// Sent again after its workflow is gone: the e-mail is not sent twice.
	run := startNewRun(t, s.TC, s.Queue, n)
	var res onceflow.Result
	require.NoError(t, run.Get(ctxFor(t), &res))
	assert.Equal(t, onceflow.Suppressed, res.Deliveries[0].LastStep().Status)
	assert.Len(t, in.mail, 1)
}

func TestSecondSMTPRelayTakesOverWhenTheFirstIsDown(t *testing.T) {
	var in inbox
	cfg, _ := channelServers(t, &in, false)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := l.Addr().String()
	require.NoError(t, l.Close())
	cfg.Email = append([]email.Config{{Addr: down, From: "notify@shop.example", TLS: "none"}}, cfg.Email...)
	s := servers.New(t, cfg, nil)
	n := onceflow.Notification{Key: "relay-fallback", Subject: "Hi", Body: "Hello",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Email, To: "ada@example.com"}}}
	_, d := sendAndWait(t, s, n)

	assert.Equal(t, onceflow.Delivered, d.Status, d.Reason)
	assert.EqualValues(t, 1, d.Attempts, "the fallback happened within the attempt, without a retry")
	assert.Contains(t, d.Receipt, "via smtp relay 2")
	assert.Contains(t, d.Receipt, "smtp relay 1 ("+down+")")
	assert.Len(t, in.mail, 1)
}
