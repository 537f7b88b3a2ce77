package onceflow

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Limits on a broadcast. MaxRecipients bounds the request (about 64 MiB of
// JSON at the per-recipient limits in typical use); the workflow's history
// does not grow with it (see broadcast/workflow.go).
const (
	MaxRecipients         = 100_000
	MaxRecipientIDLength  = 200
	MaxRecipientDataBytes = 4 << 10
)

// Recipient is one addressee of a broadcast. ID is the caller's name for
// it, unique in the broadcast: with the broadcast's key it makes the
// recipient's delivery ID, so it must stay the same when the broadcast is
// sent again.
type Recipient struct {
	ID string `json:"id"`
	To string `json:"to"`
	// Data fills the broadcast's template for this recipient.
	Data map[string]any `json:"data,omitempty"`
}

// Broadcast is one message to many recipients over one channel, each
// delivered once in effect. It is the same JSON document in the Go client,
// the HTTP API and `onceflow broadcast --file`.
type Broadcast struct {
	Key string `json:"key"`
	// Tenant scopes the key (ScopedKey); the HTTP API sets it from the
	// caller's credentials.
	Tenant     string      `json:"tenant,omitempty"`
	Channel    Channel     `json:"channel"`
	Recipients []Recipient `json:"recipients"`
	Subject    string      `json:"subject,omitempty"`
	Body       string      `json:"body,omitempty"`
	// Template names a template rendered for each recipient with its Data,
	// instead of Subject and Body.
	Template string `json:"template,omitempty"`
	// SendAt delays the broadcast until then, on a durable timer.
	SendAt *time.Time `json:"send_at,omitempty"`
}

// ScopedKey is b's key scoped by its tenant.
func (b Broadcast) ScopedKey() string { return ScopedKey(b.Tenant, b.Key) }

// BroadcastLedgerKey is the key under which a broadcast's dedup records
// live (dedup.Record.Key). The leading '@' keeps it apart from every
// notification's (scoped) key, which cannot start with one, so that a
// notification and a broadcast with the same key neither share records
// nor conflict over their fingerprints.
func BroadcastLedgerKey(scopedKey string) string { return "@broadcast/" + scopedKey }

// RecipientDeliveryID is the delivery ID of the recipient with id in the
// broadcast with scopedKey: the same on every attempt, chunk retry and
// re-run of the broadcast, and never equal to a notification's delivery ID
// (whose hashed input starts with its key, never with a NUL byte).
func RecipientDeliveryID(scopedKey, id string) string {
	sum := sha256.Sum256([]byte("\x00broadcast\x00" + scopedKey + "\x00" + id))
	return "dlv_" + hex.EncodeToString(sum[:16])
}

// DecodeBroadcast reads one broadcast from JSON. Unknown fields are
// refused; every error is a *ValidationError naming the field.
func DecodeBroadcast(r io.Reader) (Broadcast, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var b Broadcast
	if err := dec.Decode(&b); err != nil {
		ve := decodeError(err)
		if strings.HasSuffix(ve.Reason, "is not a notification field") {
			ve.Reason = "is not a broadcast field"
		}
		if ve.Field == "notification" {
			ve.Field = "broadcast"
		}
		return Broadcast{}, ve
	}
	if dec.More() {
		return Broadcast{}, &ValidationError{Field: "broadcast", Reason: "has data after the JSON document"}
	}
	return b, nil
}

// Validate reports the first problem with b as a *ValidationError naming
// the field (recipients[17].to, say), or nil when b can be sent.
func (b Broadcast) Validate() error {
	if err := ValidateKey(b.Key); err != nil {
		return err
	}
	if err := ValidateTenant(b.Tenant); err != nil {
		return err
	}
	switch b.Channel {
	case Webhook, Email, SMS, Push, Chat:
	case "":
		return &ValidationError{Field: "channel", Reason: "is required"}
	default:
		return &ValidationError{Field: "channel", Reason: fmt.Sprintf("%q is not one of webhook, email, sms, push, chat", b.Channel)}
	}
	switch n := len(b.Recipients); {
	case n == 0:
		return &ValidationError{Field: "recipients", Reason: "must list at least one recipient"}
	case n > MaxRecipients:
		return &ValidationError{Field: "recipients", Reason: fmt.Sprintf("lists %d recipients; at most %d are allowed", n, MaxRecipients)}
	}
	if err := validateContent(b.Template, b.Subject, b.Body); err != nil {
		return err
	}
	seen := make(map[string]int, len(b.Recipients))
	for i, r := range b.Recipients {
		field := fmt.Sprintf("recipients[%d]", i)
		if err := validateRecipientID(r.ID); err != nil {
			err.Field = field + ".id"
			return err
		}
		if j, dup := seen[r.ID]; dup {
			return &ValidationError{Field: field + ".id", Reason: fmt.Sprintf("repeats recipients[%d].id; ids must be unique in a broadcast", j)}
		}
		seen[r.ID] = i
		if err := r.Validate(b.Channel); err != nil {
			err.Field = field + "." + err.Field
			return err
		}
		if r.Data != nil {
			if b.Template == "" {
				return &ValidationError{Field: field + ".data", Reason: "is only used with a template"}
			}
			if data, err := json.Marshal(r.Data); err != nil || len(data) > MaxRecipientDataBytes {
				return &ValidationError{Field: field + ".data", Reason: fmt.Sprintf("must be a JSON object of at most %d bytes", MaxRecipientDataBytes)}
			}
		}
	}
	return nil
}

// Validate checks that r's address suits channel ch. It does not check
// the id or the data, which depend on the rest of the broadcast.
func (r Recipient) Validate(ch Channel) *ValidationError {
	return Delivery{Channel: ch, To: r.To}.validate()
}

func validateRecipientID(id string) *ValidationError {
	switch {
	case id == "":
		return &ValidationError{Reason: "is required"}
	case len(id) > MaxRecipientIDLength:
		return &ValidationError{Reason: fmt.Sprintf("is %d bytes; at most %d are allowed", len(id), MaxRecipientIDLength)}
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return &ValidationError{Reason: fmt.Sprintf("has %q at byte %d; only printable ASCII without spaces is allowed", id[i], i)}
		}
	}
	return nil
}

// Fingerprint identifies the payload, as Notification.Fingerprint does: the
// same key with another fingerprint is a conflict. It hashes the broadcast
// as JSON carries it, one recipient at a time, without building the whole
// document (33 ms for 100,000 recipients here: BenchmarkBroadcastFingerprint100k).
func (b Broadcast) Fingerprint() string {
	h := sha256.New()
	head := b
	head.Recipients = nil
	if head.SendAt != nil {
		t := head.SendAt.UTC()
		head.SendAt = &t
	}
	enc := json.NewEncoder(h)
	// A Broadcast and a Recipient hold strings, a time and JSON data.
	if err := enc.Encode(head); err != nil {
		panic(fmt.Sprintf("onceflow: marshal broadcast: %v", err))
	}
	for _, r := range b.Recipients {
		if r.Data != nil {
			r.Data = asJSON(r.Data)
		}
		if err := enc.Encode(r); err != nil {
			panic(fmt.Sprintf("onceflow: marshal recipient: %v", err))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// asJSON is data as a JSON decoder would give it back (structs become
// maps, numbers float64), so that a Go caller and a JSON caller agree.
func asJSON(data map[string]any) map[string]any {
	var out map[string]any
	if b, err := json.Marshal(data); err == nil && json.Unmarshal(b, &out) == nil {
		return out
	}
	return data
}

// Summary names the broadcast in one line without personal data.
func (b Broadcast) Summary() string {
	return fmt.Sprintf("broadcast %s: %d %s over %s", b.Key, len(b.Recipients), plural(len(b.Recipients), "recipient", "recipients"), b.Channel)
}

// BroadcastResult is where a broadcast stands: how many of its recipients
// are in each state. It names no recipient; the failed and ambiguous ones
// are paged from Redis (recipients.Store.Problems).
type BroadcastResult struct {
	Key        string     `json:"key"`
	SendAt     *time.Time `json:"send_at,omitempty"`
	Total      int        `json:"total"`
	Delivered  int        `json:"delivered"`
	Suppressed int        `json:"suppressed"`
	Failed     int        `json:"failed"`
	Ambiguous  int        `json:"ambiguous"`
	Cancelled  int        `json:"cancelled"`
	Pending    int        `json:"pending"`
	// Chunks is how many chunks the recipients were cut into, and
	// ChunksDone how many of them have settled.
	Chunks     int `json:"chunks"`
	ChunksDone int `json:"chunks_done"`
	// Notes explain counts that no recipient's problem record explains:
	// a chunk that failed as a whole (its list lost from Redis, say).
	Notes []string `json:"notes,omitempty"`
}

// Status sums the broadcast up as Result.Status does a notification.
func (r BroadcastResult) Status() Status {
	switch {
	case r.Ambiguous > 0:
		return Ambiguous
	case r.Failed > 0:
		return Failed
	case r.Cancelled > 0:
		return Cancelled
	case r.Pending > 0:
		return Pending
	case r.Suppressed == r.Total:
		return Suppressed
	}
	return Delivered
}

// Progress is r in one line without personal data, for the Web UI and
// the CLI.
func (r BroadcastResult) Progress() string {
	s := fmt.Sprintf("%d of %d settled: %d delivered, %d suppressed, %d failed, %d ambiguous",
		r.Total-r.Pending, r.Total, r.Delivered, r.Suppressed, r.Failed, r.Ambiguous)
	if r.Cancelled > 0 {
		s += fmt.Sprintf(", %d cancelled", r.Cancelled)
	}
	return s
}
