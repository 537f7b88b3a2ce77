package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/onceflow/onceflow/providers"
)

const (
	// stepTimeout bounds the connection, the commands, and the message and
	// its answer, each, when the caller's context allows longer.
	stepTimeout = 30 * time.Second
	// quitTimeout bounds the QUIT after a transaction: it is a courtesy, and
	// must not take the time the caller needs to record the outcome.
	quitTimeout = time.Second
)

// transact runs one SMTP transaction for msg within ctx. It returns nil
// once the relay has accepted the message, whatever fails after, and
// otherwise a *providers.Error classified by how far the transaction got
// (see the package comment).
//
// It drives go-mail's smtp.Client step by step instead of calling
// Client.DialAndSendWithContext, because that call reports a failed RSET or
// QUIT after the relay's 250 as a failed send, which the caller then sends
// again, and its context bounds only the dial. go-mail still connects,
// negotiates TLS and authenticates (DialToSMTPClientWithContext) and writes
// the MIME (Msg.WriteTo).
func (s *Sender) transact(ctx context.Context, msg *mail.Msg) error {
	from, ferr := msg.GetSender(false)
	rcpts, rerr := msg.GetRecipients()
	if err := errors.Join(ferr, rerr); err != nil {
		return &providers.Error{Permanent: true, Err: fmt.Errorf("email: %w", err)}
	}

	// raw is the TCP connection once dialled. Closing it when ctx is done
	// ends whatever step is waiting on the relay, so that no send outlives
	// its caller's deadline.
	var raw net.Conn
	stop := func() bool { return false }
	defer func() {
		stop()
		if raw != nil {
			_ = raw.Close()
		}
	}()
	c, err := s.client(func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		conn, tcp, err := s.dial(dialCtx, network, addr)
		if err != nil {
			return nil, err
		}
		raw = tcp
		stop = context.AfterFunc(ctx, func() { _ = tcp.Close() })
		return conn, nil
	})
	if err != nil {
		return &providers.Error{Permanent: true, Err: err}
	}

	client, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return notSent(ctx, "connecting to the relay", err)
	}
	defer func() {
		if ctx.Err() == nil && client.UpdateDeadline(quitTimeout) == nil {
			_ = client.Quit()
		}
	}()
	// A connection that ctx has closed fails the next step; the error from
	// moving its deadline adds nothing.
	_ = client.UpdateDeadline(stepTimeout)
	if err := client.Mail(from); err != nil {
		return notSent(ctx, "MAIL FROM", err)
	}
	for _, rcpt := range rcpts {
		if err := client.Rcpt(rcpt); err != nil {
			return notSent(ctx, "RCPT TO", redact(err, rcpt))
		}
	}
	w, err := client.Data()
	if err != nil {
		return notSent(ctx, "DATA", err)
	}

	// From the first byte of the message until the relay's answer to the
	// final ".", the relay may have taken it.
	_ = client.UpdateDeadline(stepTimeout)
	if _, err := msg.WriteTo(w); err != nil {
		return maybeSent(ctx, "sending the message", err)
	}
	return answered(ctx, w.Close())
}

// answered classifies the outcome of the relay's answer to the message (err
// from closing the DATA writer, which sends the final "." and reads the
// reply).
func answered(ctx context.Context, err error) error {
	var reply *textproto.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &reply) && reply.Code/100 == 2:
		// A positive completion other than 250: accepted all the same.
		return nil
	case errors.As(err, &reply) && (reply.Code/100 == 4 || reply.Code/100 == 5):
		return notSent(ctx, "the relay refused the message", err)
	default:
		return maybeSent(ctx, "waiting for the relay's answer to the message", err)
	}
}

// notSent is a failure after which the relay certainly has no message: a
// reply that refuses for good (permanentReply) is permanent, anything else
// retryable.
func notSent(ctx context.Context, step string, err error) error {
	var reply *textproto.Error
	return &providers.Error{
		Permanent: errors.As(err, &reply) && permanentReply(step, reply),
		Err:       describe(ctx, step, err),
	}
}

// maybeSent is a failure after which the relay may have the message.
func maybeSent(ctx context.Context, step string, err error) error {
	return &providers.Error{MaybeSent: true, Err: describe(ctx, step, err)}
}

// describe names the step that failed and, when ctx ended it, says so: the
// error itself is then only that of a closed connection.
func describe(ctx context.Context, step string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("email: %s: %w (%w)", step, cerr, err)
	}
	return fmt.Errorf("email: %s: %w", step, err)
}

// redact keeps the recipient's address out of a reply to RCPT TO, which
// relays often echo it in.
func redact(err error, rcpt string) error {
	var reply *textproto.Error
	if !errors.As(err, &reply) {
		return err
	}
	return &textproto.Error{Code: reply.Code, Msg: strings.ReplaceAll(reply.Msg, strings.Trim(rcpt, "<>"), "recipient")}
}

// dial connects to the relay, with implicit TLS when so configured, and
// returns the connection to speak SMTP on and the TCP connection under it.
// go-mail does TLS itself only when it dials; Onceflow dials, to hold the
// connection that ctx must be able to close.
func (s *Sender) dial(ctx context.Context, network, addr string) (conn, tcp net.Conn, err error) {
	var d net.Dialer
	tcp, err = d.DialContext(ctx, network, addr)
	if err != nil || s.cfg.TLS != "tls" {
		return tcp, tcp, err
	}
	tc := tls.Client(tcp, s.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = tcp.Close()
		return nil, nil, err
	}
	return tc, tcp, nil
}

func (s *Sender) client(dial mail.DialContextFunc) (*mail.Client, error) {
	opts := []mail.Option{
		mail.WithPort(s.port), mail.WithTimeout(stepTimeout), mail.WithHELO("onceflow"),
		mail.WithDialContextFunc(dial), mail.WithTLSConfig(s.tlsConfig()),
	}
	switch s.cfg.TLS {
	case "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "tls":
		// dial has made the TLS connection. A relay offers no STARTTLS on
		// one (RFC 3207), so this policy starts none, and go-mail sees the
		// connection as encrypted when it chooses the AUTH mechanism.
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if s.cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(s.cfg.Username), mail.WithPassword(s.cfg.Password))
	}
	c, err := mail.NewClient(s.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("email: client for %s: %w", s.cfg.Addr, err)
	}
	return c, nil
}

func (s *Sender) tlsConfig() *tls.Config {
	if s.cfg.TLSConfig != nil {
		return s.cfg.TLSConfig.Clone()
	}
	return &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
}
