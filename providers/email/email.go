// Package email delivers notifications over SMTP, with STARTTLS or implicit
// TLS and SMTP AUTH, as multipart text and HTML, through go-mail (a
// maintained SMTP and MIME library: no hand-written MIME here).
//
// Every attempt of one delivery carries the same Message-ID, built from the
// delivery ID, so mail systems and readers that deduplicate by Message-ID
// show a re-sent delivery once.
//
// What a failed send means follows from how far its SMTP transaction got:
//
//   - Until the relay answers DATA with 354 (connecting, TLS, greeting,
//     EHLO, AUTH, MAIL FROM, RCPT TO, DATA), the relay has no message: a 5xx
//     reply is permanent; a 4xx reply, a broken or timed-out connection,
//     or a TLS failure is retried. Nothing was sent.
//   - From the first byte of the message until the relay's answer to the
//     final ".", a broken or timed-out connection may have left the message
//     with the relay: the error is MaybeSent, and email holds it as
//     ambiguous rather than send a second copy.
//   - A 4xx or 5xx answer to the final "." is a refusal: nothing was sent,
//     4xx is retried, 5xx is permanent.
//   - A 2xx answer (250) to the final "." is delivery. RSET is not sent; a
//     failed QUIT or a dropped connection after it changes nothing.
//
// The caller's context bounds the whole transaction: when it is done the
// connection is closed, and the step it ends is classified as above.
package email

import (
	"context"
	"crypto/tls"
	"fmt"
	"html"
	"net"
	"strconv"
	"strings"

	"github.com/wneessen/go-mail"

	"github.com/onceflow/onceflow/providers"
)

// Environment variables read by ConfigFromEnv.
const (
	EnvAddr     = "ONCEFLOW_SMTP_ADDR"     // host:port; email is off when unset
	EnvUsername = "ONCEFLOW_SMTP_USERNAME" // with EnvPassword, enables AUTH
	EnvPassword = "ONCEFLOW_SMTP_PASSWORD"
	EnvFrom     = "ONCEFLOW_SMTP_FROM" // the From address
	EnvTLS      = "ONCEFLOW_SMTP_TLS"  // starttls (default), tls, or none
)

// Config is an SMTP relay.
type Config struct {
	Addr     string
	Username string
	Password string
	From     string
	// TLS is "starttls" (required, the default), "tls" (implicit, port
	// 465 style) or "none" (a local relay only).
	TLS string
	// TLSConfig overrides the TLS settings, e.g. a private CA.
	TLSConfig *tls.Config
}

// ConfigFromEnv reads a Config; ok is false when email is not configured.
func ConfigFromEnv(getenv func(string) string) (cfg Config, ok bool) {
	cfg = Config{
		Addr: getenv(EnvAddr), Username: getenv(EnvUsername), Password: getenv(EnvPassword),
		From: getenv(EnvFrom), TLS: getenv(EnvTLS),
	}
	return cfg, cfg.Addr != ""
}

// envPrefix starts every variable of an SMTP relay; the second and third
// relays read ONCEFLOW_SMTP_2_... and ONCEFLOW_SMTP_3_...
const envPrefix = "ONCEFLOW_SMTP_"

// ConfigsFromEnv reads the SMTP relays in the order they are tried:
// ONCEFLOW_SMTP_..., then ONCEFLOW_SMTP_2_... and ONCEFLOW_SMTP_3_...
func ConfigsFromEnv(getenv func(string) string) []Config {
	return providers.NumberedConfigs(getenv, envPrefix, ConfigFromEnv)
}

// Sender sends mail through one relay.
type Sender struct {
	cfg    Config
	host   string
	port   int
	domain string
}

// New checks cfg and returns a Sender. Errors name the variable at fault.
func New(cfg Config) (*Sender, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil {
		return nil, fmt.Errorf("email: %s=%q is not host:port", EnvAddr, cfg.Addr)
	}
	at := strings.LastIndexByte(cfg.From, '@')
	if at < 1 || at == len(cfg.From)-1 {
		return nil, fmt.Errorf("email: %s=%q is not an e-mail address", EnvFrom, cfg.From)
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = "starttls"
	case "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("email: %s=%q is not starttls, tls or none", EnvTLS, cfg.TLS)
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, fmt.Errorf("email: set both %s and %s, or neither", EnvUsername, EnvPassword)
	}
	return &Sender{cfg: cfg, host: host, port: port, domain: cfg.From[at+1:]}, nil
}

// MessageID is the Message-ID of every attempt of a delivery.
func (s *Sender) MessageID(deliveryID string) string {
	return deliveryID + "@" + s.domain
}

// Send mails m to the address in m.To. Every failure is a
// *providers.Error.
func (s *Sender) Send(ctx context.Context, m providers.Message) (providers.Receipt, error) {
	msg := mail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return providers.Receipt{}, &providers.Error{Permanent: true, Err: fmt.Errorf("email: from: %w", err)}
	}
	if err := msg.To(m.To); err != nil {
		return providers.Receipt{}, &providers.Error{Permanent: true, Err: fmt.Errorf("email: recipient: %w", err)}
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(s.MessageID(m.DeliveryID))
	msg.SetDateWithValue(m.Timestamp)
	msg.SetGenHeader("X-Onceflow-Delivery-Id", m.DeliveryID)
	if m.UnsubscribeURL != "" {
		// RFC 8058 one-click: a mailbox provider POSTs
		// List-Unsubscribe=One-Click to the URL, with no login.
		msg.SetGenHeader("List-Unsubscribe", "<"+m.UnsubscribeURL+">")
		msg.SetGenHeader("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	msg.SetBodyString(mail.TypeTextPlain, m.Body)
	html := m.HTML
	if html == "" {
		html = htmlBody(m)
	}
	msg.AddAlternativeString(mail.TypeTextHTML, html)

	ctx, span := providers.StartSpan(ctx, "email", "SMTP")
	err := s.transact(ctx, msg)
	providers.EndSpan(span, err)
	if err != nil {
		return providers.Receipt{}, err
	}
	return providers.Receipt{ID: "Message-ID <" + s.MessageID(m.DeliveryID) + ">"}, nil
}

// htmlBody renders the text body as HTML, escaped, one paragraph per
// blank-line-separated block.
func htmlBody(m providers.Message) string {
	var b strings.Builder
	b.WriteString("<!doctype html><html><body>")
	for _, para := range strings.Split(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n\n") {
		b.WriteString("<p>")
		b.WriteString(strings.ReplaceAll(html.EscapeString(para), "\n", "<br>"))
		b.WriteString("</p>")
	}
	b.WriteString("</body></html>")
	return b.String()
}
