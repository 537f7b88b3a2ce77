package starter

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/workflows"
)

// DigestNotFoundError says the subscriber has no digest with the key: no
// notification has joined one yet, or Temporal has since deleted it.
type DigestNotFoundError struct{ Subscriber, Key string }

func (e *DigestNotFoundError) Error() string {
	return fmt.Sprintf("no digest %q for subscriber %q", e.Key, e.Subscriber)
}

// Digest returns where the subscriber's digest with key stands, in the
// client's tenant: the events in its open window, and the key of the
// notification that sends it once its window has closed. Notifications
// join digests through Send, with Notification.Digest set; each one's
// Status then names its digest (Result.Digest).
func (c *Client) Digest(ctx context.Context, subscriber, key string) (workflows.DigestStatus, error) {
	var st workflows.DigestStatus
	if err := onceflow.ValidateTenant(c.tenant); err != nil {
		return st, err
	}
	if err := onceflow.ValidateSubscriber(subscriber); err != nil {
		return st, err
	}
	if err := onceflow.ValidateDigestKey(key); err != nil {
		return st, err
	}
	id := workflows.DigestID(c.tenant, subscriber, key)
	q, err := c.tc.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return st, &DigestNotFoundError{Subscriber: subscriber, Key: key}
	case err != nil:
		return st, fmt.Errorf("query digest %s: %w", id, err)
	}
	if err := q.Get(&st); err != nil {
		return st, fmt.Errorf("read status of digest %s: %w", id, err)
	}
	return st, nil
}
