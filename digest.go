package onceflow

import (
	"encoding/json"
	"fmt"
)

// MaxDigestEventDataBytes bounds the data of a notification that joins a
// digest: a digest renders its template once with every event's data
// (DigestData), and that data may hold at most MaxBodyBytes, so each event
// may take a quarter of it.
const MaxDigestEventDataBytes = MaxBodyBytes / 4

// ValidateDigestKey checks a digest key as a notification's Validate
// does, naming the field digest.key.
func ValidateDigestKey(key string) error {
	return Digest{Key: key, Window: MinDigestWindow.String()}.validate()
}

// validateDigestEvent checks what a digest needs of the notifications it
// gathers: a template, which the digest is rendered with, and no send_at,
// since a digest is sent when its window ends, not at a time of its own.
func (n Notification) validateDigestEvent() error {
	switch {
	case n.Template == "":
		return &ValidationError{Field: "template", Reason: "is required with a digest: the digest is rendered from it with the list of its events (.events)"}
	case n.SendAt != nil:
		return &ValidationError{Field: "send_at", Reason: "cannot be combined with a digest, which is sent when its window ends"}
	}
	if b, err := json.Marshal(n.Data); err != nil || len(b) > MaxDigestEventDataBytes {
		return &ValidationError{Field: "data", Reason: fmt.Sprintf("must be a JSON object of at most %d bytes in a notification that joins a digest", MaxDigestEventDataBytes)}
	}
	return nil
}

// DigestRef tells where a notification that joined a digest went: the
// digest it waits in and, once the digest was sent, the key of the digest's
// own notification, whose status has every delivery's detail.
type DigestRef struct {
	// Key is the digest key (Digest.Key) and Subscriber the subscriber it
	// gathers for.
	Key        string `json:"key"`
	Subscriber string `json:"subscriber"`
	// Notification is the key of the notification that sent the digest;
	// empty while the digest's window is open.
	Notification string `json:"notification,omitempty"`
	// Events counts the events the digest carried, once it was sent.
	Events int `json:"events,omitempty"`
}

// DigestEvent is one event in a digest template's data: the key of the
// notification that carried it and that notification's data.
type DigestEvent struct {
	Key  string         `json:"key"`
	Data map[string]any `json:"data,omitempty"`
}

// DigestData is the data a digest's template is rendered with:
//
//	.events       the events, in the order they reached the digest, each
//	              with .key (its notification's key) and .data (its data)
//	.count        how many events there are
//	.subscriber   the subscriber the digest is for
//	.digest_key   the digest key
func DigestData(subscriber, digestKey string, events []DigestEvent) map[string]any {
	list := make([]any, len(events))
	for i, e := range events {
		ev := map[string]any{"key": e.Key}
		if e.Data != nil {
			ev["data"] = e.Data
		} else {
			ev["data"] = map[string]any{}
		}
		list[i] = ev
	}
	return map[string]any{"events": list, "count": len(events), "subscriber": subscriber, "digest_key": digestKey}
}
