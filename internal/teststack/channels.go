package teststack

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
	"slices"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers/chat"
	"github.com/onceflow/onceflow/providers/email"
	"github.com/onceflow/onceflow/providers/push"
	"github.com/onceflow/onceflow/providers/sms"
	"github.com/onceflow/onceflow/worker"
)

// Inbox records what reached each channel's local server (ChannelServers).
type Inbox struct {
	mu   sync.Mutex
	mail []string
	sms  []url.Values
	chat []string
	push []string
}

func (in *Inbox) add(f func()) { in.mu.Lock(); f(); in.mu.Unlock() }

// Mail is every message the SMTP server took, as it arrived.
func (in *Inbox) Mail() []string { in.mu.Lock(); defer in.mu.Unlock(); return slices.Clone(in.mail) }

// SMS is the form of every message the Twilio API created.
func (in *Inbox) SMS() []url.Values { in.mu.Lock(); defer in.mu.Unlock(); return slices.Clone(in.sms) }

// Chat is the text of every Slack incoming-webhook post.
func (in *Inbox) Chat() []string { in.mu.Lock(); defer in.mu.Unlock(); return slices.Clone(in.chat) }

// Push is the body of every FCM send.
func (in *Inbox) Push() []string { in.mu.Lock(); defer in.mu.Unlock(); return slices.Clone(in.push) }

type smtpSession struct{ in *Inbox }

func (s smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.in.add(func() { s.in.mail = append(s.in.mail, string(b)) })
	return err
}
func (s smtpSession) Reset()        {}
func (s smtpSession) Logout() error { return nil }

// ChannelServers starts a real SMTP server and local servers speaking the
// Twilio, Slack webhook, Google token and FCM APIs, recording into in, and
// returns the worker configuration (WorkerConfig's) that points at them and
// the Slack incoming-webhook URL. With failSMS, Twilio refuses every number.
func (s *Servers) ChannelServers(t *testing.T, in *Inbox, failSMS bool) (cfg worker.Config, slackHook string) {
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

	cfg = s.WorkerConfig()
	cfg.Email = []email.Config{{Addr: l.Addr().String(), From: "notify@shop.example", TLS: "none"}}
	cfg.SMS = []sms.Config{{AccountSID: "AC1", AuthToken: "token", From: "+15005550006", BaseURL: api.URL}}
	cfg.Chat = &chat.Config{}
	cfg.Push = &push.Config{CredentialsJSON: creds, Endpoint: api.URL}
	return cfg, api.URL + "/slack/hook"
}

// TemplatesDir writes the template "order-shipped" (subject, text, HTML and
// short bodies over .name and .order) into a directory for the test.
func TemplatesDir(t *testing.T) string {
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
