package starter

import (
	"time"

	"github.com/onceflow/onceflow"
)

// WithMaxSendAhead makes Send refuse a notification whose send_at is more
// than d ahead (onceflow.Notification.ValidateSendAt); without it, or with
// d <= 0, the bound is onceflow.DefaultMaxSendAhead.
func WithMaxSendAhead(d time.Duration) Option { return func(c *Client) { c.maxSendAhead = d } }

// validate is what Send checks before it starts anything.
func (c *Client) validate(n onceflow.Notification) error {
	if err := n.Validate(); err != nil {
		return err
	}
	return n.ValidateSendAt(time.Now(), c.maxSendAhead)
}
