// Package providers defines what every channel's provider does: send one
// message for one delivery, and say how a failure should be handled. The
// channels themselves live in the sub-packages (webhook, ...).
package providers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Message is one delivery's content as a provider sends it.
type Message struct {
	// DeliveryID is the same on every attempt of this delivery and
	// different for every other; providers pass it to the receiving end as
	// its idempotency key wherever that end accepts one.
	DeliveryID string
	// Key is the notification's idempotency key.
	Key     string
	To      string
	Subject string
	// Body is the text for this channel.
	Body string
	// HTML is an HTML body for channels that take one (e-mail); empty
	// means the provider derives it from Body.
	HTML string
	// Timestamp is when the notification became due: the same on every
	// attempt, so the content of every attempt is identical.
	Timestamp time.Time
	// UnsubscribeURL is the https link that opts the recipient out of
	// this kind of message in one click (RFC 8058), for channels that
	// carry one (e-mail's List-Unsubscribe); empty means none.
	UnsubscribeURL string
}

// Receipt is a provider's acknowledgement of a delivery.
type Receipt struct {
	// ID is the provider's short answer, kept in the dedup record and shown
	// to users, e.g. "HTTP 200" or a provider's message ID.
	ID string
	// Replayed says the receiving end recognised the idempotency key and
	// did not apply the delivery again.
	Replayed bool
}

// Provider sends messages over one channel.
type Provider interface {
	Send(ctx context.Context, m Message) (Receipt, error)
}

// Resolver is a Provider that can ask the receiving end whether a delivery
// exists, so that an attempt that may have sent it is settled instead of
// held: found means delivered, not found means it is safe to send it once
// more.
type Resolver interface {
	// Lookup looks for m among what the provider has taken since since (a
	// time no attempt of m began before). found reports it is there, with
	// its receipt; false with a nil error means it certainly is not. Any
	// other outcome is an error, a *Error when classified: Permanent when
	// asking again cannot help (a missing scope, say). An error wrapping
	// ErrNoLookup says this recipient cannot be looked up at all.
	Lookup(ctx context.Context, m Message, since time.Time) (r Receipt, found bool, err error)
}

// ErrNoLookup is the error of a Lookup for a recipient the provider cannot
// look messages up for (a Slack incoming webhook, say).
var ErrNoLookup = errors.New("the provider cannot look this delivery up")

// Error is a classified send failure. Providers return one for every
// failure so that the caller knows whether to retry, when, and whether the
// side effect may have happened anyway.
type Error struct {
	// Permanent: retrying the same request cannot succeed (a 4xx other
	// than 408 and 429, say).
	Permanent bool
	// MaybeSent: the request may have reached the receiver and taken
	// effect (a timeout or a reset mid-request). False only when the
	// receiver certainly did not act on it: it answered with a failure, or
	// the connection was never made.
	MaybeSent bool
	// RetryAfter is the receiver's requested wait before the next try, if
	// it gave one.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Classify returns err as a *Error, treating an unclassified error as
// retryable and possibly sent: the safe assumption when nothing is known.
func Classify(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return &Error{MaybeSent: true, Err: err}
}

// Receiver is what the receiving end of an HTTP API does with a request it
// has already applied; it decides what a 5xx answer means.
type Receiver int

const (
	// Unkeyed receivers take no idempotency key: every request they apply
	// is one more message to a person (Twilio, Slack). The zero value,
	// since it is the safe assumption.
	Unkeyed Receiver = iota
	// Keyed receivers are asked to apply a delivery once by the delivery
	// ID every attempt carries (Standard Webhooks receivers by webhook-id
	// and Idempotency-Key), but Onceflow cannot see whether they do: one
	// that applied a request and then failed answers 5xx. A 5xx may have
	// been performed; the re-send carries the same ID, and unless the
	// receiver confirms it as a repeat it is reported, never silent.
	Keyed
	// Deduplicating receivers apply a delivery once however often it
	// comes, by construction (devices collapse pushes with FCM's collapse
	// IDs), or perform nothing (a read, such as a provider lookup): a 5xx
	// is the receiver saying it failed.
	Deduplicating
)

// ClassifyHTTPStatus turns an HTTP response status into nil (2xx) or an
// *Error, by what the answer says about the request:
//
//   - 408, 429 and 503 say it was not performed: retryable, honouring
//     Retry-After.
//   - Any other 5xx from a Deduplicating receiver is that receiver saying
//     it failed: retryable with the same delivery ID, honouring
//     Retry-After. From an Unkeyed or Keyed receiver it may come after the
//     request took effect (a 502 or 504 from a gateway that passed it on, a
//     500 from a server that failed after applying it): retryable but
//     MaybeSent, so the channel's ambiguity policy decides (held for SMS
//     and chat, re-sent with the same ID and reported for webhooks).
//   - Every other status, redirects included, is permanent and was not
//     performed.
func ClassifyHTTPStatus(code int, header http.Header, now time.Time, r Receiver) error {
	if code >= 200 && code < 300 {
		return nil
	}
	err := &Error{Err: fmt.Errorf("receiver answered HTTP %d %s", code, http.StatusText(code))}
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code == http.StatusServiceUnavailable:
		err.RetryAfter = ParseRetryAfter(header.Get("Retry-After"), now)
	case code >= 500:
		err.RetryAfter = ParseRetryAfter(header.Get("Retry-After"), now)
		err.MaybeSent = r != Deduplicating
	default:
		err.Permanent = true
	}
	return err
}

// ClassifyTransport classifies an error from making a request by the error
// alone: one that failed before a connection was made (DNS, dial, TLS
// handshake) certainly sent nothing; any later failure may have. DoHTTP
// knows better from what went over the wire, and uses this only when the
// transport does not say.
func ClassifyTransport(err error) error {
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		tlsErr  tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
	)
	notSent := errors.As(err, &dnsErr) || (errors.As(err, &opErr) && opErr.Op == "dial") ||
		errors.As(err, &tlsErr) || errors.As(err, &certErr)
	return &Error{MaybeSent: !notSent, Err: err}
}

// ParseRetryAfter reads a Retry-After header: delay seconds or an HTTP
// date. It returns zero for an empty, malformed or past value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
