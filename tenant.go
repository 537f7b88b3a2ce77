package onceflow

import (
	"fmt"
	"regexp"
	"strings"
)

// MaxTenantLength bounds a tenant name.
const MaxTenantLength = 63

var tenantName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// ValidateTenant checks a tenant name: 1 to MaxTenantLength letters,
// digits, '_', '.' and '-', starting with a letter or digit. Neither '@'
// nor '/' can appear, so a scoped key (ScopedKey) splits one way only and
// never reads as a path. The empty name is the single tenant and is valid.
func ValidateTenant(tenant string) error {
	if tenant == "" || tenantName.MatchString(tenant) {
		return nil
	}
	return &ValidationError{Field: "tenant", Reason: fmt.Sprintf("%q is not a tenant name (1 to %d letters, digits, '_', '.' and '-', starting with a letter or digit)", tenant, MaxTenantLength)}
}

// ScopedKey is the name under which a tenant's notification with key is
// kept: its workflow ID (workflows.ID), its delivery IDs, its dedup and
// fingerprint records. The single tenant ("") keeps the bare key, so
// notifications started before tenants existed keep their names; any
// other tenant's keys are tenant@key. '@' is forbidden in keys and tenant
// names, so no two (tenant, key) pairs share a scoped key, and no tenant's
// scoped key equals a single-tenant key.
func ScopedKey(tenant, key string) string {
	if tenant == "" {
		return key
	}
	return tenant + "@" + key
}

// WorkflowTenant is the tenant whose workflow has the ID id. Every
// Onceflow workflow ID is <kind>/<scoped key> (notification/, broadcast/,
// digest/), so the tenant is what stands before the '@' of the part after
// the first '/', when that is a tenant name; otherwise the single tenant
// "". Keys, subscriber IDs and digest keys hold no '@', so a single
// tenant's ID never reads as another tenant's.
func WorkflowTenant(id string) string {
	if _, rest, ok := strings.Cut(id, "/"); ok {
		id = rest
	}
	tenant, _, ok := strings.Cut(id, "@")
	if !ok || tenant == "" || !tenantName.MatchString(tenant) {
		return ""
	}
	return tenant
}
