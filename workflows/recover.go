package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
)

// NotificationQuery returns the onceflow.Notification a run was started
// with, decoded by the worker as every payload is (encrypted ones too), so
// that `onceflow recover` can re-send a closed notification's failed
// deliveries with the same content. A query handler adds no command: the
// recorded histories replay unchanged.
const NotificationQuery = "notification"

func setNotificationQuery(ctx workflow.Context, n onceflow.Notification) error {
	return workflow.SetQueryHandler(ctx, NotificationQuery, func() (onceflow.Notification, error) {
		return n, nil
	})
}
