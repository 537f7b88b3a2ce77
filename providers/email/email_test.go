package email_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/email"
)

// relay is a real SMTP server (go-smtp) that requires STARTTLS and AUTH
// PLAIN and keeps what it accepts.
type relay struct {
	addr     string
	certPool *x509.CertPool
	mu       sync.Mutex
	got      []received
	// rcptErr, when set, is the answer to RCPT TO.
	rcptErr *smtp.SMTPError
}

type received struct {
	from, user string
	to         []string
	data       []byte
}

type session struct {
	r    *relay
	user string
	cur  received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "onceflow" || pass != "s3cret" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.user = user
		return nil
	}), nil
}
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.cur = received{from: from, user: s.user}
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.r.rcptErr != nil {
		return s.r.rcptErr
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.r.mu.Lock()
	s.r.got = append(s.r.got, s.cur)
	s.r.mu.Unlock()
	return nil
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func newRelay(t *testing.T) *relay { return startRelay(t, false) }

// newImplicitTLSRelay is a relay that speaks TLS from the first byte (port
// 465 style) instead of offering STARTTLS.
func newImplicitTLSRelay(t *testing.T) *relay { return startRelay(t, true) }

func startRelay(t *testing.T, implicitTLS bool) *relay {
	cert, pool := selfSigned(t)
	r := &relay{certPool: pool}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{r: r}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r.addr = l.Addr().String()
	if implicitTLS {
		l = tls.NewListener(l, srv.TLSConfig)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *relay) messages() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func sender(t *testing.T, r *relay, user, pass string) *email.Sender {
	s, err := email.New(email.Config{
		Addr: r.addr, Username: user, Password: pass, From: "notify@shop.example",
		TLSConfig: &tls.Config{RootCAs: r.certPool, ServerName: "127.0.0.1"},
	})
	require.NoError(t, err)
	return s
}

func message() providers.Message {
	return providers.Message{
		DeliveryID: "dlv_0123", Key: "order-9-shipped", To: "ada@example.com",
		Subject: "Your order shipped", Body: "Parcel <b>9</b> is on its way.\n\nThanks & bye",
		Timestamp: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC),
	}
}

func TestSendOverSTARTTLSWithAuth(t *testing.T) {
	r := newRelay(t)
	receipt, err := sender(t, r, "onceflow", "s3cret").Send(context.Background(), message())
	require.NoError(t, err)
	assert.Equal(t, "Message-ID <dlv_0123@shop.example>", receipt.ID)

	got := r.messages()
	require.Len(t, got, 1)
	assert.Equal(t, "onceflow", got[0].user, "authenticated")
	assert.Equal(t, "notify@shop.example", got[0].from)
	assert.Equal(t, []string{"ada@example.com"}, got[0].to)

	msg, err := mail.ReadMessage(strings.NewReader(string(got[0].data)))
	require.NoError(t, err)
	assert.Equal(t, "<dlv_0123@shop.example>", msg.Header.Get("Message-ID"))
	assert.Equal(t, "dlv_0123", msg.Header.Get("X-Onceflow-Delivery-Id"))
	assert.Equal(t, "Your order shipped", msg.Header.Get("Subject"))
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	assert.Equal(t, "multipart/alternative", mediaType)

	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		b, err := io.ReadAll(p) // NextPart decodes quoted-printable
		require.NoError(t, err)
		parts[ct] = string(b)
	}
	assert.Contains(t, parts["text/plain"], "Parcel <b>9</b> is on its way.")
	assert.Contains(t, parts["text/html"], "Parcel &lt;b&gt;9&lt;/b&gt; is on its way.", "the text is escaped in HTML")
	assert.Contains(t, parts["text/html"], "<p>Thanks &amp; bye</p>")
}

func TestSendOverImplicitTLSWithAuth(t *testing.T) {
	r := newImplicitTLSRelay(t)
	s, err := email.New(email.Config{
		Addr: r.addr, Username: "onceflow", Password: "s3cret", From: "notify@shop.example", TLS: "tls",
		TLSConfig: &tls.Config{RootCAs: r.certPool, ServerName: "127.0.0.1"},
	})
	require.NoError(t, err)
	_, err = s.Send(context.Background(), message())
	require.NoError(t, err)

	got := r.messages()
	require.Len(t, got, 1)
	assert.Equal(t, "onceflow", got[0].user, "authenticated")
}

func TestEveryAttemptHasTheSameMessageID(t *testing.T) {
	r := newRelay(t)
	s := sender(t, r, "onceflow", "s3cret")
	for range 2 {
		_, err := s.Send(context.Background(), message())
		require.NoError(t, err)
	}
	other := message()
	other.DeliveryID = "dlv_4567"
	_, err := s.Send(context.Background(), other)
	require.NoError(t, err)

	var ids []string
	for _, m := range r.messages() {
		msg, err := mail.ReadMessage(strings.NewReader(string(m.data)))
		require.NoError(t, err)
		ids = append(ids, msg.Header.Get("Message-ID"))
	}
	assert.Equal(t, []string{"<dlv_0123@shop.example>", "<dlv_0123@shop.example>", "<dlv_4567@shop.example>"}, ids)
}

func TestErrorClassification(t *testing.T) {
	t.Run("mailbox unavailable 550 is permanent", func(t *testing.T) {
		r := newRelay(t)
		r.rcptErr = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<ada@example.com>: no such user"}
		_, err := sender(t, r, "onceflow", "s3cret").Send(context.Background(), message())
		pe := providers.Classify(err)
		assert.True(t, pe.Permanent, err)
		assert.False(t, pe.MaybeSent)
		assert.NotContains(t, err.Error(), "ada@example.com", "no recipient address in errors")
	})
	t.Run("greylisting 451 is retried", func(t *testing.T) {
		r := newRelay(t)
		r.rcptErr = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "try again later"}
		_, err := sender(t, r, "onceflow", "s3cret").Send(context.Background(), message())
		pe := providers.Classify(err)
		assert.False(t, pe.Permanent, err)
		assert.False(t, pe.MaybeSent)
	})
	t.Run("wrong password sends nothing", func(t *testing.T) {
		r := newRelay(t)
		_, err := sender(t, r, "onceflow", "wrong").Send(context.Background(), message())
		require.Error(t, err)
		pe := providers.Classify(err)
		assert.True(t, pe.Permanent, "535 to AUTH: %v", err)
		assert.False(t, pe.MaybeSent)
		assert.Empty(t, r.messages())
		assert.NotContains(t, err.Error(), "wrong", "the password is never in an error")
	})
	t.Run("untrusted certificate sends nothing", func(t *testing.T) {
		r := newRelay(t)
		s, err := email.New(email.Config{Addr: r.addr, Username: "onceflow", Password: "s3cret", From: "notify@shop.example"})
		require.NoError(t, err)
		_, err = s.Send(context.Background(), message())
		require.Error(t, err)
		assert.False(t, providers.Classify(err).MaybeSent)
		assert.Empty(t, r.messages())
	})
	t.Run("connection refused sends nothing", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		s, err := email.New(email.Config{Addr: addr, From: "notify@shop.example"})
		require.NoError(t, err)
		_, err = s.Send(context.Background(), message())
		pe := providers.Classify(err)
		assert.False(t, pe.Permanent)
		assert.False(t, pe.MaybeSent)
	})
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	for cfg, variable := range map[email.Config]string{
		{Addr: "smtp.example", From: "a@b.example"}:                        email.EnvAddr,
		{Addr: "smtp.example:587", From: "nobody"}:                         email.EnvFrom,
		{Addr: "smtp.example:587", From: "a@b.example", TLS: "ssl3"}:       email.EnvTLS,
		{Addr: "smtp.example:587", From: "a@b.example", Username: "alone"}: email.EnvPassword,
	} {
		_, err := email.New(cfg)
		assert.ErrorContains(t, err, variable)
	}
}
