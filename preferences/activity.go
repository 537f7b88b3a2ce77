package preferences

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
)

// TypeUnavailable is the failure type of a CheckPreferences attempt that
// could not read the preferences; retried.
const TypeUnavailable = "PreferencesUnavailable"

// CheckInput asks which channels a subscriber's preferences keep a
// notification's category off.
type CheckInput struct {
	Tenant     string             `json:"tenant,omitempty"`
	Subscriber string             `json:"subscriber"`
	Category   string             `json:"category"`
	Channels   []onceflow.Channel `json:"channels"`
}

// Decision is CheckPreferences' answer, recorded in the notification's
// history so that every replay takes the same one.
type Decision struct {
	// Skip maps each channel the subscriber opted out of to the reason its
	// deliveries are skipped; channels not in it are sent.
	Skip map[onceflow.Channel]string `json:"skip,omitempty"`
}

// Activities holds the notification's CheckPreferences activity. Register
// a *Activities with a worker.
type Activities struct{ store *Store }

// NewActivities returns the preferences' activities on store.
func NewActivities(store *Store) *Activities { return &Activities{store: store} }

// CheckPreferences decides, once, at send time, which of a notification's
// channels its subscriber opted out of for its category. A critical
// category is never skipped. A store that cannot be read fails the attempt
// (retried): an unknown preference is not taken as consent.
func (a *Activities) CheckPreferences(ctx context.Context, in CheckInput) (Decision, error) {
	skip, err := a.store.Decide(ctx, in.Tenant, in.Subscriber, in.Category, in.Channels)
	if err != nil {
		return Decision{}, temporal.NewApplicationErrorWithCause("could not read the subscriber's preferences; nothing was sent", TypeUnavailable, err)
	}
	for ch := range skip {
		activity.GetLogger(ctx).Info("Delivery skipped: the subscriber opted out", "category", in.Category, "channel", ch)
	}
	return Decision{Skip: skip}, nil
}
