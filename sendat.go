package onceflow

import (
	"fmt"
	"time"
)

// DefaultMaxSendAhead is how far ahead send_at may be by default: a year.
// A notification waiting on a timer holds an open workflow, a dedup window
// that must outlive it, and payload keys that must not be rotated out
// before it fires; a send_at years away is far more often a typo (2062 for
// 2026) than a plan.
const DefaultMaxSendAhead = 365 * 24 * time.Hour

// ValidateSendAt checks that n's send_at, if any, is at most maxAhead after
// now (DefaultMaxSendAhead when maxAhead is zero or less). It is the front
// door's rule, checked where notifications are accepted (starter.Client's
// Send, which the HTTP API and the CLI go through), and not part of
// Validate: the workflow validates its input once, recording the verdict,
// and a rule that depends on the clock and on each client's configuration
// would make workers refuse what a client with a larger bound accepted.
func (n Notification) ValidateSendAt(now time.Time, maxAhead time.Duration) error {
	return validateSendAt(n.SendAt, now, maxAhead)
}

// ValidateSendAt is Notification.ValidateSendAt for a broadcast.
func (b Broadcast) ValidateSendAt(now time.Time, maxAhead time.Duration) error {
	return validateSendAt(b.SendAt, now, maxAhead)
}

func validateSendAt(sendAt *time.Time, now time.Time, maxAhead time.Duration) error {
	if sendAt == nil {
		return nil
	}
	if maxAhead <= 0 {
		maxAhead = DefaultMaxSendAhead
	}
	if latest := now.Add(maxAhead); sendAt.After(latest) {
		return &ValidationError{Field: "send_at", Reason: fmt.Sprintf("is %s, more than %v ahead; the latest allowed now is %s",
			sendAt.UTC().Format(time.RFC3339), maxAhead, latest.UTC().Format(time.RFC3339))}
	}
	return nil
}
