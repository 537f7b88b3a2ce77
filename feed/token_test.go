package feed_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/revocation"
)

const (
	oldSecret = "old-secret-0123456789abcdef0123456789"
	newSecret = "new-secret-0123456789abcdef0123456789"
)

func signer(t *testing.T, secrets string) *feed.Signer {
	t.Helper()
	g, err := feed.NewSigner(secrets)
	require.NoError(t, err)
	return g
}

// Rotation: the first secret signs, each verifies; a token signed with a
// secret stops working when that secret is removed.
func TestTokenSecretRotation(t *testing.T) {
	now := time.Now()
	old, _, err := signer(t, oldSecret).Mint("acme", "u1", time.Minute, now)
	require.NoError(t, err)

	rotating := signer(t, newSecret+","+oldSecret)
	assert.Equal(t, 2, rotating.Keys())
	_, err = rotating.Verify(old, now)
	assert.NoError(t, err, "a token of the old secret works while the old secret is listed")
	fresh, _, err := rotating.Mint("acme", "u1", time.Minute, now)
	require.NoError(t, err)
	_, err = signer(t, newSecret).Verify(fresh, now)
	assert.NoError(t, err, "the first secret signs")
	_, err = signer(t, newSecret).Verify(old, now)
	assert.ErrorIs(t, err, feed.ErrToken, "once the old secret is removed, what it signed is refused")

	_, err = feed.NewSigner(newSecret + ",short-" + oldSecret[:10])
	require.Error(t, err)
	assert.Contains(t, err.Error(), feed.EnvTokenSecret+" entry 2 is 16 bytes")
	assert.NotContains(t, err.Error(), oldSecret[:10], "the error names the entry, never its content")
}

// legacyToken is a token as Mint made it before tokens carried their
// issue time: {"t", "s", "e"} only.
func legacyToken(t *testing.T, secret, claims string) string {
	t.Helper()
	key := hmac.New(sha256.New, []byte(secret))
	key.Write([]byte("onceflow subscriber token v1"))
	payload := feed.TokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, key.Sum(nil))
	mac.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// A subscriber's not-before time refuses the tokens issued at or before
// it, accepts those issued after, and touches no other tenant's
// subscriber of the same id. Tokens minted before they carried an issue
// time still verify, and a revocation refuses them.
func TestRevokedTokensAreRefused(t *testing.T) {
	ctx := context.Background()
	rdb := server.Client(t)
	svc := feed.NewService(feed.New(rdb, time.Hour, time.Hour))
	g := signer(t, newSecret)
	sub := "u-" + t.Name()
	before := time.Now()
	acmeOld, _, err := g.Mint("acme", sub, time.Hour, before)
	require.NoError(t, err)
	globexOld, _, err := g.Mint("globex", sub, time.Hour, before)
	require.NoError(t, err)
	singleOld, _, err := g.Mint("", sub, time.Hour, before)
	require.NoError(t, err)
	legacy := legacyToken(t, newSecret, `{"t":"acme","s":"`+sub+`","e":`+strconv.FormatInt(before.Add(time.Hour).Unix(), 10)+`}`)
	for _, tok := range []string{acmeOld, globexOld, singleOld, legacy} {
		_, err = svc.Verify(ctx, g, tok, time.Now())
		require.NoError(t, err, "before any revocation")
	}

	_, err = revocation.New(rdb).Revoke(ctx, "acme", sub, before.Add(time.Millisecond))
	require.NoError(t, err)
	_, err = svc.Verify(ctx, g, acmeOld, time.Now())
	assert.ErrorIs(t, err, feed.ErrToken)
	assert.ErrorContains(t, err, "revoked")
	_, err = svc.Verify(ctx, g, legacy, time.Now())
	assert.ErrorIs(t, err, feed.ErrToken, "a token without an issue time is taken as issued as early as it can have been")
	_, err = svc.ForTenant("globex").Verify(ctx, g, acmeOld, time.Now())
	assert.ErrorIs(t, err, feed.ErrToken, "the token's tenant counts, not the service's")
	for _, tok := range []string{globexOld, singleOld} {
		c, err := svc.Verify(ctx, g, tok, time.Now())
		assert.NoError(t, err, "another tenant's subscriber of the same id is untouched")
		assert.Equal(t, sub, c.Subscriber)
	}

	fresh, _, err := g.Mint("acme", sub, time.Hour, before.Add(2*time.Millisecond))
	require.NoError(t, err)
	c, err := svc.Verify(ctx, g, fresh, time.Now())
	require.NoError(t, err, "a token issued after the revocation works at once")
	assert.Equal(t, "acme", c.Tenant)
}
