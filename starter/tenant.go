package starter

import (
	"fmt"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/workflows"
)

// ForTenant returns a copy of c whose Send, Wait, Status and Cancel work in
// tenant's scope: Send starts notifications of that tenant, and the others
// find only that tenant's, so that the same key in two tenants names two
// independent notifications. "" is the single tenant. An invalid tenant
// name makes every call fail with a *onceflow.ValidationError.
func (c *Client) ForTenant(tenant string) *Client {
	scoped := *c
	scoped.tenant = tenant
	return &scoped
}

// Tenant is the tenant whose notifications c sends and follows.
func (c *Client) Tenant() string { return c.tenant }

// scope gives n the client's tenant. A notification that names another
// tenant is refused: the client, not the payload, decides whose it is.
func (c *Client) scope(n *onceflow.Notification) error { return c.scopeTenant(&n.Tenant) }

// scopeTenant sets *tenant, a notification's or a broadcast's, to the
// client's tenant, or refuses another one.
func (c *Client) scopeTenant(tenant *string) error {
	switch *tenant {
	case c.tenant:
	case "":
		*tenant = c.tenant
	default:
		return &onceflow.ValidationError{Field: "tenant", Reason: fmt.Sprintf("is %q but the client sends for tenant %q", *tenant, c.tenant)}
	}
	return onceflow.ValidateTenant(c.tenant)
}

// scopedKey is key in the client's tenant (onceflow.ScopedKey).
func (c *Client) scopedKey(key string) string { return onceflow.ScopedKey(c.tenant, key) }

// workflowID is the workflow ID of the notification with key in the
// client's tenant.
func (c *Client) workflowID(key string) string {
	return workflows.ID(onceflow.ScopedKey(c.tenant, key))
}
