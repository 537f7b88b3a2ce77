package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/preferences"
)

// TypePreferencesUnavailable is the failure type of a CheckPreferences
// attempt that could not read the preferences; retried.
const TypePreferencesUnavailable = "PreferencesUnavailable"

// Preferences is the preference store the activities read
// (preferences.Store).
type Preferences interface {
	Decide(ctx context.Context, tenant, subscriber, category string, channels []onceflow.Channel) (map[onceflow.Channel]string, error)
	Critical() preferences.Critical
}

// PreferencesInput asks which channels a subscriber's preferences keep a
// notification's category off.
type PreferencesInput struct {
	Tenant     string             `json:"tenant,omitempty"`
	Subscriber string             `json:"subscriber"`
	Category   string             `json:"category"`
	Channels   []onceflow.Channel `json:"channels"`
}

// PreferencesOutput is the decision, recorded in the workflow's history so
// that every replay takes the same one.
type PreferencesOutput struct {
	// Skip maps each channel the subscriber opted out of to the reason its
	// deliveries are skipped; channels not in it are sent.
	Skip map[onceflow.Channel]string `json:"skip,omitempty"`
}

// CheckPreferences decides, once, at send time, which of a notification's
// channels its subscriber opted out of for its category. A critical
// category is never skipped. A store that cannot be read fails the attempt
// (retried): an unknown preference is not taken as consent.
func (a *Activities) CheckPreferences(ctx context.Context, in PreferencesInput) (PreferencesOutput, error) {
	if a.Preferences == nil {
		return PreferencesOutput{}, temporal.NewApplicationError("this worker has no preference store", TypePreferencesUnavailable)
	}
	skip, err := a.Preferences.Decide(ctx, in.Tenant, in.Subscriber, in.Category, in.Channels)
	if err != nil {
		return PreferencesOutput{}, temporal.NewApplicationErrorWithCause("could not read the subscriber's preferences; nothing was sent", TypePreferencesUnavailable, err)
	}
	for ch := range skip {
		activity.GetLogger(ctx).Info("Delivery skipped: the subscriber opted out", "category", in.Category, "channel", ch)
	}
	return PreferencesOutput{Skip: skip}, nil
}

// unsubscribeURL is the one-click unsubscribe link an e-mail of in
// carries (List-Unsubscribe, RFC 8058): it opts the subscriber out of the
// category on e-mail. None without a subscriber and a category, for a
// critical category, or on a worker without a secret and a public URL.
// The link expires DefaultLinkTTL after the notification became due, so
// that every attempt of a delivery sends the same header; it is issued
// then too (a revocation after it refuses it).
func (a *Activities) unsubscribeURL(ctx context.Context, in DeliverInput) string {
	if a.Unsubscribe == nil || in.Subscriber == "" || in.Category == "" || in.Delivery.Channel != onceflow.Email {
		return ""
	}
	if a.Preferences != nil && a.Preferences.Critical().Has(in.Category) {
		return ""
	}
	u, err := a.Unsubscribe.URL(preferences.Link{
		Tenant: in.Tenant, Subscriber: in.Subscriber, Category: in.Category, Channel: string(onceflow.Email),
		Issued: in.Timestamp, Expires: in.Timestamp.Add(preferences.DefaultLinkTTL).Truncate(time.Second),
	})
	if err != nil {
		activity.GetLogger(ctx).Warn("No List-Unsubscribe header: the link could not be made", "delivery_id", in.DeliveryID, "error", fmt.Sprint(err))
		return ""
	}
	return u
}
