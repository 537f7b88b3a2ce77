// Package digest owns digests: a subscriber's notifications with the same
// digest key gathered into one delivery per recipient at the end of a
// window. It holds the digest workflow's contract, which the notification
// that joins a digest (package workflows) and the digest's workflow
// (digest/window, which sends the digest as a notification) both import:
// the workflow's type, ID, input, signals and status query. It also holds
// the JoinDigest activity, which signals an event to its digest, and the
// Client that reads where a digest stands.
package digest

import (
	"time"

	"github.com/onceflow/onceflow"
)

// JoinGiveUp bounds a JoinDigest's retries; a digest remembers the keys
// it sent for longer, so that an attempt retried after its signal landed
// is dropped as a repeat.
const JoinGiveUp = 10 * time.Minute

// The digest workflow's wire contract.
const (
	// WorkflowName is the digest workflow's type.
	WorkflowName = "DigestWorkflow"
	// EventSignal carries one Signal to a digest.
	EventSignal = "digest-event"
	// OutcomeSignal carries an Outcome from a digest to each of its
	// events' notifications.
	OutcomeSignal = "digest-outcome"
	// StatusQuery answers a digest's Status. It has the name of the
	// notification's status query.
	StatusQuery = "status"
)

// ID is the workflow ID of tenant's digest with key for subscriber:
// digest/<subscriber>/<key>, or digest/<tenant>@<subscriber>/<key>.
// Subscriber ids carry no personal data (onceflow.ValidateSubscriber), and
// neither they nor tenant names nor digest keys hold '/' or '@', so no two
// digests share an ID.
func ID(tenant, subscriber, key string) string {
	return "digest/" + onceflow.ScopedKey(tenant, subscriber+"/"+key)
}

// Signal is one event as its digest's workflow receives it: what the
// notification that carried it says about the digest's content.
type Signal struct {
	// Event is the notification's key, without its tenant's scope, and
	// its data.
	Event onceflow.DigestEvent `json:"event"`
	// Window is the notification's digest window; the window a digest
	// waits is its first event's.
	Window string `json:"window"`
	// Template, Category and Deliveries are the notification's: a digest
	// is rendered with its first event's template and category, and sent
	// to every distinct delivery of its events.
	Template   string              `json:"template"`
	Category   string              `json:"category,omitempty"`
	Deliveries []onceflow.Delivery `json:"deliveries"`
}

// Start is a digest workflow's input: whose digest it is and what a run
// passes to the next.
type Start struct {
	Tenant     string `json:"tenant,omitempty"`
	Subscriber string `json:"subscriber"`
	Key        string `json:"key"`
	// Carry holds the events that reached the previous run after its
	// digest had been rendered: they open this run's window.
	Carry []Signal `json:"carry,omitempty"`
	// Recent maps the keys of events sent in recent digests to when they
	// were sent: a JoinDigest attempt retried after its signal landed
	// would otherwise put an event in a second digest.
	Recent map[string]time.Time `json:"recent,omitempty"`
}

// Outcome is what a digest tells each of its events once sent.
type Outcome struct {
	// Notification is the key of the digest's notification.
	Notification string          `json:"notification"`
	Events       int             `json:"events"`
	Result       onceflow.Result `json:"result"`
}

// Status is where a digest stands: the answer to its status query.
type Status struct {
	Subscriber string `json:"subscriber"`
	Key        string `json:"key"`
	// Window is the open window's length; Opened and Closes bound it.
	// All three are empty while the digest waits for a first event.
	Window string     `json:"window,omitempty"`
	Opened *time.Time `json:"opened,omitempty"`
	Closes *time.Time `json:"closes,omitempty"`
	// Events lists the keys of the events in the open window, in arrival
	// order.
	Events []string `json:"events"`
	// Sending is the key of the digest's notification while it is sent.
	Sending string `json:"sending,omitempty"`
	// Next lists the events that came while it was sent: they open the
	// next window.
	Next []string `json:"next,omitempty"`
}
