package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/preferences"
)

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
	if a.Critical.Has(in.Category) {
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
