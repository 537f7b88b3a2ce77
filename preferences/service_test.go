package preferences_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/revocation"
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

// legacyLinkToken is a link token as links were made before they carried
// their issue time: {"t", "s", "c", "h", "e"} only, in mailboxes since.
func legacyLinkToken(secret, payload string) string {
	p := base64.RawURLEncoding.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("onceflow-unsubscribe-v1." + p))
	return p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// A subscriber's not-before time refuses the unsubscribe links issued at
// or before it, links made before links carried an issue time included,
// and accepts those issued after; another tenant's subscriber of the same
// id keeps its links.
func TestRevokedLinksAreRefused(t *testing.T) {
	ctx := context.Background()
	rdb := server.Client(t)
	cfg := preferences.Config{Secret: "service-test-secret-0123456789abcdef0123", PublicURL: "https://notify.example.com"}
	svc := preferences.NewService(preferences.New(rdb, nil), cfg.Links())
	sub := "user-" + t.Name()
	token := func(tenant string) string {
		link, err := svc.ForTenant(tenant).NewUnsubscribeLink(sub, "news", "email", time.Hour)
		require.NoError(t, err)
		return link.URL[len(cfg.PublicURL+preferences.LinkPath):]
	}
	acmeOld, globexOld := token("acme"), token("globex")
	legacy := legacyLinkToken(cfg.Secret, `{"t":"acme","s":"`+sub+`","c":"news","h":"email","e":`+strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)+`}`)
	for _, tok := range []string{acmeOld, globexOld, legacy} {
		_, err := svc.CheckUnsubscribeLink(ctx, tok)
		require.NoError(t, err, "before any revocation: links already in mailboxes keep working")
	}

	_, err := revocation.New(rdb).Revoke(ctx, "acme", sub, time.Now())
	require.NoError(t, err)
	for name, tok := range map[string]string{"issued before": acmeOld, "without an issue time": legacy} {
		_, err = svc.CheckUnsubscribeLink(ctx, tok)
		assert.ErrorIs(t, err, preferences.ErrRevokedLink, name)
		_, err = svc.ForTenant("globex").Unsubscribe(ctx, tok)
		assert.ErrorIs(t, err, preferences.ErrRevokedLink, name)
	}
	p, err := svc.ForTenant("acme").Get(ctx, sub)
	require.NoError(t, err)
	assert.Empty(t, p.OptOuts, "a revoked link changes nothing")

	_, err = svc.Unsubscribe(ctx, globexOld)
	assert.NoError(t, err, "another tenant's subscriber of the same id keeps its links")
	time.Sleep(2 * time.Millisecond)
	l, err := svc.Unsubscribe(ctx, token("acme"))
	require.NoError(t, err, "a link issued after the revocation works")
	assert.Equal(t, "acme", l.Tenant)
}
