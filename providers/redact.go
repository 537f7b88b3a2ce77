package providers

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
)

// minRedacted is the shortest recipient, subject or body Redact looks
// for, and the shortest run of a body it takes for an echo: a shorter one
// ("Hi") would blank every occurrence of a common word in the reason, and
// says nothing about a person.
const minRedacted = 6

// Redact returns err with every copy of m's recipient, subject and body in
// its message replaced by a placeholder, keeping its classification (a
// *Error stays one, with the same flags) and what it wraps, so errors.Is
// still finds ErrNoLookup and the like. Receivers echo what they were
// sent: Twilio's "The 'To' number +15551234567 is not a valid phone
// number", a relay's "<ann@example.com>: mailbox unknown", a receiver that
// answers with the request's body. Error messages become reasons, logs and
// Temporal failures, which carry no personal data, so every provider error
// passes through here on its way out of a send or a lookup.
//
// A body is found in full, and by its beginning too: an Excerpt of an
// echo holds the first MaxExcerpt bytes, white space collapsed.
func Redact(err error, m Message) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := redactText(msg, m)
	if clean == msg {
		return err
	}
	out := &redacted{msg: clean, err: err}
	var pe *Error
	if errors.As(err, &pe) {
		return &Error{Permanent: pe.Permanent, MaybeSent: pe.MaybeSent, RetryAfter: pe.RetryAfter, Err: out}
	}
	return out
}

func redactText(s string, m Message) string {
	if m.To != "" {
		s = strings.ReplaceAll(s, m.To, "[recipient]")
	}
	// A phone number is often echoed without its '+'.
	if strings.HasPrefix(m.To, "+") && len(m.To) > minRedacted {
		s = strings.ReplaceAll(s, m.To[1:], "[recipient]")
	}
	// A URL's path and query may hold a secret (a Slack incoming webhook's
	// does), and a receiver may echo them without the host.
	if u, err := url.Parse(m.To); err == nil && u.Host != "" {
		for _, part := range []string{u.EscapedPath(), u.Path, u.RawQuery} {
			if len(part) >= minRedacted {
				s = strings.ReplaceAll(s, part, "[recipient]")
			}
		}
	}
	for _, text := range []struct{ value, placeholder string }{{m.Body, "[body]"}, {m.Subject, "[subject]"}} {
		// The forms an echo takes, longest match first: as an Excerpt
		// shows it (white space collapsed), as JSON quotes it, as sent.
		for _, form := range []string{sanitize(text.value), jsonQuoted(text.value), text.value} {
			s = redactRuns(s, form, text.placeholder)
		}
	}
	return s
}

// jsonQuoted is s as it appears inside a JSON string.
func jsonQuoted(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// redactRuns replaces every run in s that is the whole of secret, or its
// beginning of at least minRedacted bytes, with placeholder.
func redactRuns(s, secret, placeholder string) string {
	if len(secret) < minRedacted {
		return s
	}
	head := secret[:minRedacted]
	var b strings.Builder
	for {
		i := strings.Index(s, head)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		n := minRedacted
		for n < len(secret) && i+n < len(s) && s[i+n] == secret[n] {
			n++
		}
		b.WriteString(s[:i])
		b.WriteString(placeholder)
		s = s[i+n:]
	}
}

// redacted is an error whose message had personal data taken out.
type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
