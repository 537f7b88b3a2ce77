package email_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/email"
)

// fault is what a rawRelay does wrong.
type fault int

const (
	noFault           fault = iota
	stallAtRcpt             // never answers RCPT TO
	dropMidMessage          // hangs up after the first line of the message
	dropBeforeAnswer        // takes the whole message, hangs up without answering it
	stallBeforeAnswer       // takes the whole message, never answers it
	dropAfterAnswer         // answers the message, hangs up before RSET or QUIT
	stallAfterAnswer        // answers the message, then answers nothing more
)

// rawRelay is a plain-text SMTP server for the faults go-smtp cannot
// produce. It speaks the protocol line by line and keeps every message it
// read to the final ".".
type rawRelay struct {
	addr  string
	fault fault
	// Replies other than the usual: to RCPT TO, to DATA, and to the
	// message (the final ".").
	rcptReply, dataReply, endReply string

	mu     sync.Mutex
	got    []string
	closed chan struct{} // one value per connection that ended
}

func newRawRelay(t *testing.T, f fault) *rawRelay {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &rawRelay{addr: l.Addr().String(), fault: f, closed: make(chan struct{}, 16)}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		_ = l.Close()
		conns.Wait()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			stop := context.AfterFunc(t.Context(), func() { _ = c.Close() })
			go func() {
				defer conns.Done()
				defer stop()
				r.serve(c)
			}()
		}
	}()
	return r
}

func (r *rawRelay) serve(c net.Conn) {
	defer func() {
		_ = c.Close()
		r.closed <- struct{}{}
	}()
	text := textproto.NewConn(c)
	reply := func(line string) { _ = text.PrintfLine("%s", line) }
	// stall answers nothing more and reads until the client hangs up.
	stall := func() { _, _ = io.Copy(io.Discard, c) }
	or := func(s, usual string) string {
		if s != "" {
			return s
		}
		return usual
	}

	reply("220 localhost ESMTP")
	for {
		line, err := text.ReadLine()
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
		switch verb {
		case "EHLO", "HELO":
			reply("250 localhost")
		case "MAIL", "RSET", "NOOP":
			reply("250 2.0.0 Ok")
		case "RCPT":
			if r.fault == stallAtRcpt {
				stall()
				return
			}
			reply(or(r.rcptReply, "250 2.1.5 Ok"))
		case "DATA":
			reply(or(r.dataReply, "354 End data with <CR><LF>.<CR><LF>"))
			if r.dataReply != "" {
				continue
			}
			if r.fault == dropMidMessage {
				_, _ = text.ReadLine()
				return
			}
			data, err := io.ReadAll(text.DotReader())
			if err != nil {
				return
			}
			r.mu.Lock()
			r.got = append(r.got, string(data))
			r.mu.Unlock()
			switch r.fault {
			case dropBeforeAnswer:
				return
			case stallBeforeAnswer:
				stall()
				return
			}
			reply(or(r.endReply, "250 2.0.0 Ok: queued as 1"))
			switch r.fault {
			case dropAfterAnswer:
				return
			case stallAfterAnswer:
				stall()
				return
			}
		case "QUIT":
			reply("221 2.0.0 Bye")
			return
		default:
			reply("502 5.5.2 Command not recognized")
		}
	}
}

// copies is how many messages the relay read to the end.
func (r *rawRelay) copies() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *rawRelay) sender(t *testing.T) *email.Sender {
	s, err := email.New(email.Config{Addr: r.addr, From: "notify@shop.example", TLS: "none"})
	require.NoError(t, err)
	return s
}

// deliver sends m as the Deliver activity retries it: again after a
// failure that sent nothing and may pass, never after one that may have
// sent. It returns the last receipt or error and the attempts made.
func deliver(s *email.Sender, m providers.Message) (receipt providers.Receipt, attempts int, err error) {
	for attempts = 1; ; attempts++ {
		receipt, err = s.Send(context.Background(), m)
		if pe := providers.Classify(err); err == nil || pe.Permanent || pe.MaybeSent || attempts == 3 {
			return receipt, attempts, err
		}
	}
}

func TestAMessageTheRelayAcceptedIsDelivered(t *testing.T) {
	t.Run("the relay hangs up after its 250", func(t *testing.T) {
		r := newRawRelay(t, dropAfterAnswer)
		receipt, attempts, err := deliver(r.sender(t), message())
		require.NoError(t, err)
		assert.Equal(t, "Message-ID <dlv_0123@shop.example>", receipt.ID)
		assert.Equal(t, 1, attempts)
		assert.Equal(t, 1, r.copies())
	})
	t.Run("the relay is silent after its 250", func(t *testing.T) {
		r := newRawRelay(t, stallAfterAnswer)
		start := time.Now()
		_, err := r.sender(t).Send(context.Background(), message())
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 3*time.Second, "a silent QUIT does not hold the receipt back")
		assert.Equal(t, 1, r.copies())
	})
	t.Run("the relay answers 2xx other than 250", func(t *testing.T) {
		r := newRawRelay(t, noFault)
		r.endReply = "251 2.0.0 Ok: queued elsewhere"
		_, err := r.sender(t).Send(context.Background(), message())
		require.NoError(t, err)
		assert.Equal(t, 1, r.copies())
	})
}

func TestABrokenMessageMayHaveBeenSent(t *testing.T) {
	// A message larger than the socket buffers is still being written when
	// the relay hangs up.
	long := message()
	long.Body = strings.Repeat("A line of a long message.\n", 1<<18)
	for _, tc := range []struct {
		name  string
		fault fault
		m     providers.Message
	}{
		{"the relay hangs up while the message is written", dropMidMessage, long},
		{"the relay hangs up during the message", dropMidMessage, message()},
		{"the relay hangs up before answering the message", dropBeforeAnswer, message()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRawRelay(t, tc.fault)
			_, attempts, err := deliver(r.sender(t), tc.m)
			require.Error(t, err)
			pe := providers.Classify(err)
			assert.True(t, pe.MaybeSent, err)
			assert.False(t, pe.Permanent, err)
			assert.Equal(t, 1, attempts, "not sent again")
			assert.LessOrEqual(t, r.copies(), 1)
		})
	}
}

func TestARefusedMessageWasNotSent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		relay     func(*rawRelay)
		permanent bool
	}{
		{"451 to the message", func(r *rawRelay) { r.endReply = "451 4.3.0 Try again later" }, false},
		{"421 to the message", func(r *rawRelay) { r.endReply = "421 4.4.2 Closing connection" }, false},
		{"554 to the message", func(r *rawRelay) { r.endReply = "554 5.7.1 Rejected as spam" }, true},
		{"451 to RCPT TO", func(r *rawRelay) { r.rcptReply = "451 4.7.1 Greylisted" }, false},
		{"550 to RCPT TO", func(r *rawRelay) { r.rcptReply = "550 5.1.1 <ada@example.com>: no such user" }, true},
		{"452 to DATA", func(r *rawRelay) { r.dataReply = "452 4.3.1 Insufficient storage" }, false},
		{"554 to DATA", func(r *rawRelay) { r.dataReply = "554 5.5.0 No valid recipients" }, true},
		// RFC 5321 4.2.1: the first digit decides ...
		{"450 to RCPT TO", func(r *rawRelay) { r.rcptReply = "450 4.2.1 Mailbox busy" }, false},
		{"452 to RCPT TO", func(r *rawRelay) { r.rcptReply = "452 4.5.3 Too many recipients" }, false},
		{"421 to RCPT TO", func(r *rawRelay) { r.rcptReply = "421 4.3.2 Service not available" }, false},
		{"551 to RCPT TO", func(r *rawRelay) { r.rcptReply = "551 5.1.6 User not local" }, true},
		{"553 to RCPT TO", func(r *rawRelay) { r.rcptReply = "553 5.1.3 Bad recipient address syntax" }, true},
		{"550 5.7.1 to RCPT TO", func(r *rawRelay) { r.rcptReply = "550 5.7.1 Relaying denied" }, true},
		{"552 5.3.4 to the message", func(r *rawRelay) { r.endReply = "552 5.3.4 Message size exceeds fixed limit" }, true},
		{"554 to the message without an enhanced code", func(r *rawRelay) { r.endReply = "554 Transaction failed" }, true},
		// ... except where RFC 5321 and RFC 3463 say otherwise.
		{"552 to RCPT TO (too many recipients, RFC 5321 4.5.3.1.10)", func(r *rawRelay) { r.rcptReply = "552 Too many recipients" }, false},
		{"552 5.2.2 mailbox full to RCPT TO", func(r *rawRelay) { r.rcptReply = "552 5.2.2 Mailbox full" }, false},
		{"552 5.2.2 mailbox full to the message", func(r *rawRelay) { r.endReply = "552 5.2.2 Mailbox full" }, false},
		{"552 5.3.1 mail system full to the message", func(r *rawRelay) { r.endReply = "552 5.3.1 Mail system full" }, false},
		{"554 5.4.5 congestion to DATA", func(r *rawRelay) { r.dataReply = "554 5.4.5 Mail system congestion" }, false},
		{"554 5.5.3 too many recipients to DATA", func(r *rawRelay) { r.dataReply = "554 5.5.3 Too many recipients" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRawRelay(t, noFault)
			tc.relay(r)
			_, err := r.sender(t).Send(context.Background(), message())
			require.Error(t, err)
			pe := providers.Classify(err)
			assert.Equal(t, tc.permanent, pe.Permanent, err)
			assert.False(t, pe.MaybeSent, err)
			assert.NotContains(t, err.Error(), "ada@example.com", "no recipient address in errors")
		})
	}
}

func TestSendEndsWithItsContext(t *testing.T) {
	const deadline = 300 * time.Millisecond
	for _, tc := range []struct {
		name      string
		fault     fault
		cancel    bool // cancel at the deadline instead of setting one
		maybeSent bool
	}{
		{"no answer to the message by the deadline", stallBeforeAnswer, false, true},
		{"no answer to the message when cancelled", stallBeforeAnswer, true, true},
		{"no answer to RCPT TO by the deadline", stallAtRcpt, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRawRelay(t, tc.fault)
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			if tc.cancel {
				ctx, cancel = context.WithCancel(context.Background())
				time.AfterFunc(deadline, cancel)
			}
			defer cancel()

			start := time.Now()
			_, err := r.sender(t).Send(ctx, message())
			took := time.Since(start)
			require.Error(t, err)
			assert.Less(t, took, deadline+time.Second, "Send returned %v after its deadline", took-deadline)
			pe := providers.Classify(err)
			assert.Equal(t, tc.maybeSent, pe.MaybeSent, err)
			assert.False(t, pe.Permanent, err)
			assert.True(t, errors.Is(err, ctx.Err()), "the error says the context ended it: %v", err)
			select {
			case <-r.closed:
			case <-time.After(time.Second):
				t.Fatal("the connection to the relay is still open")
			}
		})
	}
}
