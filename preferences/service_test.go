package preferences_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/preferences"
)

// The service is what the API and the CLI share: it works in its tenant,
// checks the subscriber once, and a link it makes, followed, opts out the
// subscriber of the link's tenant.
func TestServiceWorksInItsTenant(t *testing.T) {
	ctx := context.Background()
	cfg := preferences.Config{Critical: critical(t), Secret: "service-test-secret-0123456789abcdef0123", PublicURL: "https://notify.example.com"}
	svc := preferences.NewService(preferences.New(server.Client(t), cfg.Critical), cfg.Links())
	acme := svc.ForTenant("acme")
	sub := "user-" + t.Name()

	link, err := acme.NewUnsubscribeLink(sub, "news", "email", time.Hour)
	require.NoError(t, err)
	token := link.URL[len(cfg.PublicURL+preferences.LinkPath):]
	l, err := svc.ForTenant("globex").Unsubscribe(ctx, token)
	require.NoError(t, err)
	assert.Equal(t, "acme", l.Tenant, "the link's signature, not the service's tenant, names whose subscriber it is")

	p, err := acme.Get(ctx, sub)
	require.NoError(t, err)
	assert.Equal(t, []preferences.OptOut{{Category: "news", Channel: "email"}}, p.OptOuts)
	p, err = svc.Get(ctx, sub)
	require.NoError(t, err)
	assert.Empty(t, p.OptOuts, "the single tenant's subscriber of the same id is another one")

	var ve *onceflow.ValidationError
	_, err = svc.ForTenant("no@such").Get(ctx, sub)
	require.True(t, errors.As(err, &ve), "%v", err)
	assert.Equal(t, "tenant", ve.Field)
	_, err = acme.NewUnsubscribeLink("bad/id", "news", "email", time.Hour)
	require.True(t, errors.As(err, &ve), "%v", err)
	assert.Equal(t, "subscriber", ve.Field)
	_, err = acme.NewUnsubscribeLink(sub, "security", "email", time.Hour)
	require.True(t, errors.As(err, &ve), "%v", err)
	assert.Equal(t, "category", ve.Field)

	noLinks := preferences.NewService(preferences.New(server.Client(t), nil), nil)
	_, err = noLinks.NewUnsubscribeLink(sub, "news", "email", time.Hour)
	assert.ErrorIs(t, err, preferences.ErrNoUnsubscribeKey)
	_, err = noLinks.Unsubscribe(ctx, token)
	assert.ErrorIs(t, err, preferences.ErrNoUnsubscribeKey)
}
