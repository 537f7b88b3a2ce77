package onceflow

import "fmt"

// ValidationError says which field of a notification is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid notification: %s %s", e.Field, e.Reason)
}

// ConflictError says that a key is already in use by a notification with a
// different payload. Nothing was started.
type ConflictError struct {
	Key string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("key %q is already used by a notification with a different payload; use a new key for a new notification", e.Key)
}

// NotFoundError says that nothing of a kind has the key in the caller's
// tenant: no notification, broadcast or digest, say. Temporal may also
// have deleted it once its retention passed.
type NotFoundError struct {
	// Kind is what was looked for: "notification", "broadcast", "digest".
	Kind string
	Key  string
	// Subscriber is whose it is, for what belongs to a subscriber (a
	// digest); "" otherwise.
	Subscriber string
}

func (e *NotFoundError) Error() string {
	if e.Subscriber != "" {
		return fmt.Sprintf("no %s %q for subscriber %q", e.Kind, e.Key, e.Subscriber)
	}
	return fmt.Sprintf("no %s with key %q", e.Kind, e.Key)
}
