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
