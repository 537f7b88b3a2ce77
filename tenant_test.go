package onceflow_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
)

func TestScopedKeyKeepsTheSingleTenantsKeysAndSeparatesTenants(t *testing.T) {
	assert.Equal(t, "order-1", onceflow.ScopedKey("", "order-1"))
	assert.Equal(t, "acme@order-1", onceflow.ScopedKey("acme", "order-1"))
	assert.NotEqual(t, onceflow.ScopedKey("acme", "order-1"), onceflow.ScopedKey("globex", "order-1"))
	// Neither part can hold '@', so no tenant's scoped key is a valid key
	// of the single tenant, and no other pair scopes the same.
	assert.Error(t, onceflow.ValidateKey(onceflow.ScopedKey("acme", "order-1")))
	assert.Error(t, onceflow.ValidateTenant("acme@x"))
}

// The single tenant's names are those of the releases before tenants: the
// literals were computed with the code of commit 5f60d46, so running
// notifications, dedup records and recorded histories keep matching.
func TestSingleTenantNamesAreUnchanged(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	n := onceflow.Notification{Key: "order-1", Subject: "Shipped", Body: "On its way", SendAt: &at,
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: "https://partner.example/hooks",
			Fallback: []onceflow.Delivery{{Channel: onceflow.Email, To: "ops@example.com"}}}}}
	key := onceflow.ScopedKey(n.Tenant, n.Key)
	assert.Equal(t, "dlv_810286672e0a84665afe44ac380a32ae", n.Deliveries[0].ID(key))
	assert.Equal(t, "dlv_1852d9ee11fc196a5560637f92dad17c", n.Deliveries[0].Fallback[0].ID(key))
	assert.Equal(t, "8719193bdae9cc72ef12a3a08bfeca98cb687d44d1f540e66363aeb68f6233ee", n.Fingerprint())

	n.Tenant = "acme"
	assert.NotEqual(t, "dlv_810286672e0a84665afe44ac380a32ae", n.Deliveries[0].ID(onceflow.ScopedKey(n.Tenant, n.Key)), "a tenant's deliveries have their own IDs")
	assert.NotEqual(t, "8719193bdae9cc72ef12a3a08bfeca98cb687d44d1f540e66363aeb68f6233ee", n.Fingerprint())
}

func TestValidateTenant(t *testing.T) {
	for _, ok := range []string{"", "acme", "Acme-2", "a", "team_1.eu", strings.Repeat("a", onceflow.MaxTenantLength)} {
		assert.NoError(t, onceflow.ValidateTenant(ok), ok)
	}
	for _, bad := range []string{"-acme", ".acme", "ac me", "acme/eu", "acme@eu", "ä", strings.Repeat("a", onceflow.MaxTenantLength+1)} {
		err := onceflow.ValidateTenant(bad)
		var ve *onceflow.ValidationError
		require.ErrorAs(t, err, &ve, bad)
		assert.Equal(t, "tenant", ve.Field)
	}
	n := valid()
	n.Tenant = "acme/eu"
	var ve *onceflow.ValidationError
	require.ErrorAs(t, n.Validate(), &ve)
	assert.Equal(t, "tenant", ve.Field)
}

func TestWorkflowTenant(t *testing.T) {
	cases := map[string]string{
		"notification/acme@order-1":      "acme",
		"broadcast/globex@spring-sale":   "globex",
		"digest/acme@sub-1/daily":        "acme",
		"notification/order-1":           "",
		"digest/sub-1/daily":             "",
		"notification/order-1.recover":   "",
		"acme@order-1":                   "acme",
		"notification/@order-1":          "",
		"notification/-x@order-1":        "",
		"notification/a b@order-1":       "",
		"":                               "",
		"notification/team_1.eu@k@other": "team_1.eu",
	}
	for id, want := range cases {
		assert.Equal(t, want, onceflow.WorkflowTenant(id), id)
	}
}
