//go:build linux

package chaos

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/mail"
	"strings"
	"sync"
	"time"
)

// smtpRelay is a mail relay on loopback, raw SMTP so that it can misbehave
// where a library server cannot: take a message and drop the connection
// before answering it. Each message it takes lands in the recipient's
// mailbox, one copy per message (a mailbox does not deduplicate).
type smtpRelay struct {
	l      net.Listener
	plan   plan
	slowBy time.Duration
	ledger *ledger
	// expect maps a recipient to the delivery ID its messages must carry.
	expect func(rcpt string) (deliveryID string, ok bool)
	wg     sync.WaitGroup
}

func startSMTP(p plan, slowBy time.Duration, expect func(string) (string, bool)) (*smtpRelay, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &smtpRelay{l: l, plan: p, slowBy: slowBy, ledger: newLedger(), expect: expect}
	go r.serve()
	return r, nil
}

func (r *smtpRelay) addr() string { return r.l.Addr().String() }

func (r *smtpRelay) close() {
	_ = r.l.Close()
	r.wg.Wait()
}

func (r *smtpRelay) serve() {
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() { _ = c.Close() }()
			r.session(c)
		}()
	}
}

// session speaks the server side of SMTP (RFC 5321) as far as Onceflow's
// email provider uses it, without TLS or AUTH (a local relay).
func (r *smtpRelay) session(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	in := bufio.NewReader(c)
	say := func(line string) bool {
		_, err := io.WriteString(c, line+"\r\n")
		return err == nil
	}
	if !say("220 chaos.local ESMTP chaos relay") {
		return
	}
	var rcpt, fault string
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(verb, "EHLO"):
			say("250-chaos.local")
			say("250-8BITMIME")
			say("250 SIZE 10485760")
		case strings.HasPrefix(verb, "HELO"):
			say("250 chaos.local")
		case strings.HasPrefix(verb, "MAIL FROM:"):
			rcpt, fault = "", ""
			say("250 2.1.0 OK")
		case strings.HasPrefix(verb, "RCPT TO:"):
			rcpt = strings.Trim(strings.TrimSpace(line[len("RCPT TO:"):]), "<>")
			if i := strings.IndexByte(rcpt, '>'); i >= 0 {
				rcpt = rcpt[:i]
			}
			n := r.ledger.request(rcpt)
			fault = r.plan.smtp(rcpt, n)
			if fault == fault421 {
				r.ledger.fault(rcpt, fault)
				say("421 4.3.2 chaos.local closing: try again later")
				return
			}
			say("250 2.1.5 OK")
		case verb == "DATA":
			if rcpt == "" {
				say("503 5.5.1 RCPT first")
				continue
			}
			say("354 End data with <CR><LF>.<CR><LF>")
			msg, err := readData(in)
			if err != nil {
				return
			}
			if !r.take(c, rcpt, fault, msg, say) {
				return
			}
			rcpt, fault = "", ""
		case verb == "RSET":
			rcpt, fault = "", ""
			say("250 2.0.0 OK")
		case verb == "NOOP":
			say("250 2.0.0 OK")
		case verb == "QUIT":
			say("221 2.0.0 bye")
			return
		default:
			say("502 5.5.2 command not implemented")
		}
	}
}

// take answers a received message as fault says; it returns false when
// the connection is to be dropped.
func (r *smtpRelay) take(c net.Conn, rcpt, fault string, msg []byte, say func(string) bool) bool {
	r.ledger.fault(rcpt, fault)
	if fault == fault451 {
		return say("451 4.3.0 chaos.local: local error, message not queued")
	}
	if id, ok := r.expect(rcpt); !ok {
		r.ledger.refuse("email to %s: not a recipient of this run", rcpt)
		return say("550 5.1.1 no such mailbox")
	} else if got := messageDeliveryID(msg); got != id {
		r.ledger.refuse("email to %s: delivery ID %q, want %q", rcpt, got, id)
		return say("554 5.6.0 message does not check out")
	}
	r.ledger.apply(rcpt, "")
	switch fault {
	case faultDrop:
		if tcp, ok := c.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
		return false
	case faultSlowData:
		time.Sleep(r.slowBy)
	}
	return say("250 2.0.0 OK queued")
}

// readData reads a message up to the line ".", undoing dot-stuffing.
func readData(in *bufio.Reader) ([]byte, error) {
	var msg bytes.Buffer
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == ".\r\n" || line == ".\n" {
			return msg.Bytes(), nil
		}
		msg.WriteString(strings.TrimPrefix(line, "."))
	}
}

// messageDeliveryID reads the X-Onceflow-Delivery-Id header, and checks
// that the Message-ID is built from it.
func messageDeliveryID(msg []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return ""
	}
	id := m.Header.Get("X-Onceflow-Delivery-Id")
	if !strings.HasPrefix(m.Header.Get("Message-Id"), "<"+id+"@") {
		return "Message-ID " + m.Header.Get("Message-Id") + " not built from " + id
	}
	return id
}
