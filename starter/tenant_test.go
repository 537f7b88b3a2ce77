package starter_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/starter"
)

// The client, not the payload, decides the tenant; a bad tenant name is
// refused before Temporal is asked anything (this client has none).
func TestForTenantRefusesAnotherTenantOrABadName(t *testing.T) {
	ctx := context.Background()
	n := onceflow.Notification{Key: "k-1", Body: "b", Tenant: "globex",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: "https://partner.example/hooks"}}}
	c := starter.New(nil, "")
	assert.Equal(t, "", c.Tenant())
	assert.Equal(t, "acme", c.ForTenant("acme").Tenant())
	assert.Equal(t, "", c.Tenant(), "ForTenant returns a copy")

	for _, scoped := range []*starter.Client{c, c.ForTenant("acme")} {
		_, err := scoped.Send(ctx, n)
		var ve *onceflow.ValidationError
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, "tenant", ve.Field)
	}
	bad := c.ForTenant("ac/me")
	for name, err := range map[string]error{
		"status": func() error { _, err := bad.Status(ctx, "k-1"); return err }(),
		"wait":   func() error { _, err := bad.Wait(ctx, "k-1"); return err }(),
		"cancel": bad.Cancel(ctx, "k-1"),
		"send":   func() error { m := n; m.Tenant = ""; _, err := bad.Send(ctx, m); return err }(),
	} {
		var ve *onceflow.ValidationError
		require.ErrorAs(t, err, &ve, name)
		assert.Equal(t, "tenant", ve.Field, name)
	}
}
