package onceflow

import (
	"fmt"
	"regexp"
	"time"
)

// MaxSubscriberLength bounds a subscriber id.
const MaxSubscriberLength = 128

var (
	subscriberID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:=-]{0,127}$`)
	categoryName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// ValidateSubscriber checks a subscriber id: the app's own id for the
// person a notification is for, 1 to MaxSubscriberLength letters, digits,
// '_', '.', ':', '=' and '-', starting with a letter or digit. It names
// Redis records and appears in URL paths (/v1/subscribers/{id}), so it
// can carry neither '/' nor '@': an e-mail address or a phone number is
// refused, since ids are visible to operators and must not be personal
// data.
func ValidateSubscriber(id string) error {
	if subscriberID.MatchString(id) {
		return nil
	}
	if id == "" {
		return &ValidationError{Field: "subscriber", Reason: "is required"}
	}
	return &ValidationError{Field: "subscriber", Reason: fmt.Sprintf("%q is not a subscriber id (1 to %d letters, digits, '_', '.', ':', '=' and '-', starting with a letter or digit; no personal data such as e-mail addresses)", id, MaxSubscriberLength)}
}

// ValidateCategory checks a category name, such as "marketing" or
// "security": 1 to 64 lower-case letters, digits, '-' and '_', starting
// with a letter or digit.
func ValidateCategory(name string) error {
	if categoryName.MatchString(name) {
		return nil
	}
	return &ValidationError{Field: "category", Reason: fmt.Sprintf("%q is not a category name (1 to 64 lower-case letters, digits, '-' and '_', starting with a letter or digit)", name)}
}

// Bounds on a digest's window.
const (
	MinDigestWindow = time.Second
	MaxDigestWindow = 7 * 24 * time.Hour
)

// Digest gathers a subscriber's notifications with the same digest key,
// started within Window of the first, into one delivery per channel sent
// when the window ends.
type Digest struct {
	// Key names the digest within the subscriber, e.g. "comments". The
	// rules of ValidateCategory apply.
	Key string `json:"key"`
	// Window is a Go duration such as "10m", from MinDigestWindow to
	// MaxDigestWindow.
	Window string `json:"window"`
}

// WindowDuration is Window parsed; zero when it does not parse (Validate
// reports that).
func (d Digest) WindowDuration() time.Duration {
	w, err := time.ParseDuration(d.Window)
	if err != nil {
		return 0
	}
	return w
}

func (d Digest) validate() error {
	if !categoryName.MatchString(d.Key) {
		return &ValidationError{Field: "digest.key", Reason: fmt.Sprintf("%q is not a digest key (1 to 64 lower-case letters, digits, '-' and '_', starting with a letter or digit)", d.Key)}
	}
	w, err := time.ParseDuration(d.Window)
	if err != nil || w < MinDigestWindow || w > MaxDigestWindow {
		return &ValidationError{Field: "digest.window", Reason: fmt.Sprintf("%q is not a duration from %s to %s, such as \"10m\"", d.Window, MinDigestWindow, MaxDigestWindow)}
	}
	return nil
}

// validateAudience checks what a notification says about whom it is for:
// its subscriber, category and digest.
func (n Notification) validateAudience() error {
	if n.Subscriber != "" {
		if err := ValidateSubscriber(n.Subscriber); err != nil {
			return err
		}
	}
	if n.Category != "" {
		if n.Subscriber == "" {
			return &ValidationError{Field: "category", Reason: "needs a subscriber, whose preferences it is checked against"}
		}
		if err := ValidateCategory(n.Category); err != nil {
			return err
		}
	}
	if n.Digest != nil {
		if n.Subscriber == "" {
			return &ValidationError{Field: "digest", Reason: "needs a subscriber, whose notifications it gathers"}
		}
		if err := n.Digest.validate(); err != nil {
			return err
		}
		if err := n.validateDigestEvent(); err != nil {
			return err
		}
	}
	return nil
}
