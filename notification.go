// Package onceflow holds the domain of the Onceflow notification orchestrator:
// what a notification is, how it is validated and fingerprinted, and the
// vocabulary of delivery outcomes. It imports neither Temporal nor Redis.
package onceflow

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Limits on a notification. They keep workflow inputs, histories and dedup
// records small, and keys usable as workflow IDs.
const (
	MaxKeyLength     = 200
	MaxDeliveries    = 50
	MaxSubjectLength = 998 // the longest line RFC 5322 allows in a header
	MaxBodyBytes     = 64 << 10
)

// Channel is the medium a delivery goes over.
type Channel string

// The channels Onceflow knows. A worker sends only over the channels it has a
// provider for; a delivery on any other fails permanently with a clear reason.
const (
	Webhook Channel = "webhook"
	Email   Channel = "email"
	SMS     Channel = "sms"
	Push    Channel = "push"
	Chat    Channel = "chat"
	// InApp is the subscriber's in-app feed, kept by Onceflow itself; a
	// delivery's To is the subscriber id.
	InApp Channel = "inapp"
)

// Channels lists every known channel in a stable order.
var Channels = []Channel{Webhook, Email, SMS, Push, Chat, InApp}

// MaxFallbacks bounds a delivery's fallback list.
const MaxFallbacks = 5

// Delivery is one recipient on one channel.
type Delivery struct {
	Channel Channel `json:"channel"`
	To      string  `json:"to"`
	// Fallback lists other channels or recipients to try, in order, when
	// this delivery fails: refused permanently, or out of retries. A
	// delivery that may have been sent (ambiguous) does not fall back.
	Fallback []Delivery `json:"fallback,omitempty"`
}

// ID is the delivery's stable identity: the same for every attempt, retry and
// re-start of this delivery of this notification, different for every other.
// It is the dedup record's name and the provider's idempotency key, so it is a
// hash: it carries neither the recipient nor the key in clear.
func (d Delivery) ID(key string) string {
	sum := sha256.Sum256([]byte(key + "\x00" + string(d.Channel) + "\x00" + d.To))
	return "dlv_" + hex.EncodeToString(sum[:16])
}

// Notification is one message to one or more recipients, identified by the
// idempotency key the calling application chose. It is the same JSON document
// in the Go client, the HTTP API and `onceflow send --file`.
type Notification struct {
	Key string `json:"key"`
	// Tenant is whose notification it is; its key is unique within the
	// tenant (ScopedKey). Empty is the single tenant of an installation
	// without API tokens. The HTTP API sets it from the caller's token and
	// never takes it from the body.
	Tenant     string     `json:"tenant,omitempty"`
	Deliveries []Delivery `json:"deliveries"`
	Subject    string     `json:"subject,omitempty"`
	Body       string     `json:"body,omitempty"`
	// Template names a template rendered with Data for the subject and
	// each channel's body, instead of Subject and Body.
	Template string         `json:"template,omitempty"`
	Data     map[string]any `json:"data,omitempty"`
	// SendAt delays the deliveries until then, on a durable timer. Empty or
	// past means now.
	SendAt *time.Time `json:"send_at,omitempty"`
	// Subscriber is the app's id for the person the notification is for
	// (ValidateSubscriber): whose preferences decide, per channel, whether
	// Category may be sent, and whose digests gather it.
	Subscriber string `json:"subscriber,omitempty"`
	// Category classifies the notification for the subscriber's
	// preferences, e.g. "marketing" or "security". It needs a Subscriber.
	Category string `json:"category,omitempty"`
	// Digest, when set, gathers this notification with the subscriber's
	// others of the same digest key into one delivery per channel. It
	// needs a Subscriber.
	Digest *Digest `json:"digest,omitempty"`
}

// DecodeNotification reads one notification from JSON. Unknown fields are
// refused so that a misspelt field is an error rather than silently ignored.
// Every error is a *ValidationError naming the field.
func DecodeNotification(r io.Reader) (Notification, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var n Notification
	if err := dec.Decode(&n); err != nil {
		return Notification{}, decodeError(err)
	}
	if dec.More() {
		return Notification{}, &ValidationError{Field: "notification", Reason: "has data after the JSON document"}
	}
	return n, nil
}

func decodeError(err error) *ValidationError {
	var (
		typeErr  *json.UnmarshalTypeError
		parseErr *time.ParseError
	)
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			// The document itself: a number or an array, say.
			field = "notification"
		}
		return &ValidationError{Field: field, Reason: "must be a JSON " + typeErr.Type.Kind().String() + ", not " + typeErr.Value}
	case errors.As(err, &parseErr):
		return &ValidationError{Field: "send_at", Reason: "must be an RFC 3339 time such as 2026-12-01T09:00:00Z"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if name == "" {
			return &ValidationError{Field: "notification", Reason: `has a field named "", which is not a notification field`}
		}
		return &ValidationError{Field: name, Reason: "is not a notification field"}
	case errors.Is(err, io.EOF):
		return &ValidationError{Field: "notification", Reason: "is empty"}
	}
	return &ValidationError{Field: "notification", Reason: "is not valid JSON: " + err.Error()}
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Validate reports the first problem with n as a *ValidationError naming the
// field, or nil when n can be sent.
func (n Notification) Validate() error {
	if err := ValidateKey(n.Key); err != nil {
		return err
	}
	if err := ValidateTenant(n.Tenant); err != nil {
		return err
	}
	if err := n.validateAudience(); err != nil {
		return err
	}
	if len(n.Deliveries) == 0 {
		return &ValidationError{Field: "deliveries", Reason: "must list at least one delivery"}
	}
	if len(n.Deliveries) > MaxDeliveries {
		return &ValidationError{Field: "deliveries", Reason: fmt.Sprintf("lists %d deliveries; at most %d are allowed", len(n.Deliveries), MaxDeliveries)}
	}
	type recipient struct {
		channel Channel
		to      string
	}
	seen := make(map[recipient]int, len(n.Deliveries))
	for i, d := range n.Deliveries {
		if err := d.validate(); err != nil {
			err.Field = fmt.Sprintf("deliveries[%d].%s", i, err.Field)
			return err
		}
		r := recipient{d.Channel, d.To}
		if j, dup := seen[r]; dup {
			return &ValidationError{Field: fmt.Sprintf("deliveries[%d]", i), Reason: fmt.Sprintf("repeats deliveries[%d]", j)}
		}
		seen[r] = i
		if len(d.Fallback) > MaxFallbacks {
			return &ValidationError{Field: fmt.Sprintf("deliveries[%d].fallback", i), Reason: fmt.Sprintf("lists %d fallbacks; at most %d are allowed", len(d.Fallback), MaxFallbacks)}
		}
		for j, fb := range d.Fallback {
			field := fmt.Sprintf("deliveries[%d].fallback[%d]", i, j)
			if err := fb.validate(); err != nil {
				err.Field = field + "." + err.Field
				return err
			}
			if len(fb.Fallback) > 0 {
				return &ValidationError{Field: field + ".fallback", Reason: "cannot nest; list every fallback in order on the delivery"}
			}
		}
	}
	if err := validateContent(n.Template, n.Subject, n.Body); err != nil {
		return err
	}
	if n.Template == "" {
		if n.Data != nil {
			return &ValidationError{Field: "data", Reason: "is only used with a template"}
		}
		return n.validateContentTimesSteps()
	}
	if b, err := json.Marshal(n.Data); err != nil || len(b) > MaxBodyBytes {
		return &ValidationError{Field: "data", Reason: fmt.Sprintf("must be a JSON object of at most %d bytes", MaxBodyBytes)}
	}
	return n.validateContentTimesSteps()
}

var templateName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidTemplateName reports whether name can name a template: 1 to 64
// lower-case letters, digits, '-' and '_', starting with a letter or digit.
func ValidTemplateName(name string) bool { return templateName.MatchString(name) }

// validateContent checks a message's text, a notification's or a
// broadcast's: a template name with neither subject nor body, or a
// one-line subject and a body within MaxBodyBytes.
func validateContent(template, subject, body string) error {
	if template != "" {
		switch {
		case !ValidTemplateName(template):
			return &ValidationError{Field: "template", Reason: fmt.Sprintf("%q is not a template name (lower-case letters, digits, '-' and '_', at most 64)", template)}
		case subject != "":
			return &ValidationError{Field: "subject", Reason: "comes from the template; leave it out"}
		case body != "":
			return &ValidationError{Field: "body", Reason: "comes from the template; leave it out"}
		}
		return nil
	}
	if len(subject) > MaxSubjectLength || strings.ContainsAny(subject, "\r\n") {
		return &ValidationError{Field: "subject", Reason: fmt.Sprintf("must be one line of at most %d bytes", MaxSubjectLength)}
	}
	if strings.TrimSpace(body) == "" {
		return &ValidationError{Field: "body", Reason: "is required (or give a template)"}
	}
	if len(body) > MaxBodyBytes {
		return &ValidationError{Field: "body", Reason: fmt.Sprintf("is %d bytes; at most %d are allowed", len(body), MaxBodyBytes)}
	}
	return nil
}

// ValidateKey checks an idempotency key: 1 to MaxKeyLength printable ASCII
// characters without spaces. Keys become workflow IDs, which every operator
// can see, so a key that looks like an e-mail address is refused too.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return &ValidationError{Field: "key", Reason: "is required"}
	case len(key) > MaxKeyLength:
		return &ValidationError{Field: "key", Reason: fmt.Sprintf("is %d bytes; at most %d are allowed", len(key), MaxKeyLength)}
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] > '~' {
			return &ValidationError{Field: "key", Reason: fmt.Sprintf("has %q at byte %d; only printable ASCII without spaces is allowed", key[i], i)}
		}
	}
	if strings.Contains(key, "@") {
		return &ValidationError{Field: "key", Reason: "contains '@'; keys are visible in Temporal and must not carry personal data such as e-mail addresses"}
	}
	return nil
}

func (d Delivery) validate() *ValidationError {
	if d.To == "" {
		return &ValidationError{Field: "to", Reason: "is required"}
	}
	switch d.Channel {
	case Webhook:
		u, err := url.Parse(d.To)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &ValidationError{Field: "to", Reason: "must be an absolute http or https URL for channel webhook"}
		}
	case Email:
		a, err := mail.ParseAddress(d.To)
		if err != nil || a.Name != "" {
			return &ValidationError{Field: "to", Reason: "must be a bare e-mail address for channel email"}
		}
	case SMS:
		if !e164.MatchString(d.To) {
			return &ValidationError{Field: "to", Reason: "must be a phone number in E.164 form (+ and 7 to 15 digits) for channel sms"}
		}
	case InApp:
		if err := ValidateSubscriber(d.To); err != nil {
			return &ValidationError{Field: "to", Reason: "must be a subscriber id for channel inapp: " + err.(*ValidationError).Reason}
		}
	case Push, Chat:
		if strings.TrimSpace(d.To) != d.To || len(d.To) > 4096 {
			return &ValidationError{Field: "to", Reason: "must be a device token or channel without surrounding spaces, at most 4096 bytes"}
		}
	case "":
		return &ValidationError{Field: "channel", Reason: "is required"}
	default:
		return &ValidationError{Field: "channel", Reason: fmt.Sprintf("%q is not one of webhook, email, sms, push, chat, inapp", d.Channel)}
	}
	return nil
}

// Fingerprint identifies the payload: two notifications with the same key and
// the same fingerprint are the same request; the same key with another
// fingerprint is a conflict.
//
// It is computed on the notification as JSON carries it, so that the app
// that starts a notification and the workflow that receives it (decoded
// from JSON, where a Go struct in Data has become a map and every number a
// float64) agree.
func (n Notification) Fingerprint() string {
	c := n
	if c.SendAt != nil {
		t := c.SendAt.UTC()
		c.SendAt = &t
	}
	if c.Data != nil {
		var asJSON map[string]any
		if b, err := json.Marshal(c.Data); err == nil && json.Unmarshal(b, &asJSON) == nil {
			c.Data = asJSON
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		// A Notification holds only strings, slices of them and a time.
		panic(fmt.Sprintf("onceflow: marshal notification: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Summary names the notification in one line without personal data: its
// key and its channels, never its recipients or content.
func (n Notification) Summary() string {
	return fmt.Sprintf("%s: %d %s over %s", n.Key, len(n.Deliveries), plural(len(n.Deliveries), "delivery", "deliveries"), strings.Join(channelNames(n.ChannelSet()), ", "))
}

// ChannelSet lists the distinct channels of n's deliveries in the order of
// Channels.
func (n Notification) ChannelSet() []Channel {
	used := make(map[Channel]bool)
	for _, d := range n.Deliveries {
		used[d.Channel] = true
	}
	var out []Channel
	for _, c := range Channels {
		if used[c] {
			out = append(out, c)
		}
	}
	return out
}

func channelNames(cs []Channel) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
