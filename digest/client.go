package digest

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow"
)

// Client reads where digests stand, within one tenant (ForTenant).
// Notifications join digests through the notification's client, with
// Notification.Digest set; each one's status then names its digest.
type Client struct {
	tc     client.Client
	tenant string
}

// NewClient returns the single tenant's Client on tc.
func NewClient(tc client.Client) *Client { return &Client{tc: tc} }

// ForTenant returns a copy of c that works in tenant's scope; "" is the
// single tenant.
func (c *Client) ForTenant(tenant string) *Client {
	scoped := *c
	scoped.tenant = tenant
	return &scoped
}

// Status returns where the subscriber's digest with key stands, in the
// client's tenant: the events in its open window, and the key of the
// notification that sends it once its window has closed. A digest no
// notification has joined yet, or that Temporal has since deleted, is a
// *onceflow.NotFoundError.
func (c *Client) Status(ctx context.Context, subscriber, key string) (Status, error) {
	var st Status
	if err := onceflow.ValidateTenant(c.tenant); err != nil {
		return st, err
	}
	if err := onceflow.ValidateSubscriber(subscriber); err != nil {
		return st, err
	}
	if err := onceflow.ValidateDigestKey(key); err != nil {
		return st, err
	}
	id := ID(c.tenant, subscriber, key)
	q, err := c.tc.QueryWorkflow(ctx, id, "", StatusQuery)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return st, &onceflow.NotFoundError{Kind: "digest", Key: key, Subscriber: subscriber}
	case err != nil:
		return st, fmt.Errorf("query digest %s: %w", id, err)
	}
	if err := q.Get(&st); err != nil {
		return st, fmt.Errorf("read status of digest %s: %w", id, err)
	}
	return st, nil
}
