package preferences_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/preferences"
)

const secret = "0123456789abcdef0123456789abcdef-test"

func links(t *testing.T, secret string) *preferences.Links {
	cfg, err := preferences.ConfigFromEnv(func(name string) string {
		return map[string]string{preferences.EnvUnsubscribeSecret: secret, preferences.EnvPublicURL: "https://notify.example.com/"}[name]
	})
	require.NoError(t, err)
	return cfg.Links()
}

func TestLinkRoundTrip(t *testing.T) {
	k := links(t, secret)
	now := time.Now()
	l := preferences.Link{Tenant: "acme", Subscriber: "user-1", Category: "marketing", Channel: "email", Issued: now, Expires: now.Add(time.Hour)}
	u, err := k.URL(l)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(u, "https://notify.example.com/v1/unsubscribe/"), u)
	token := strings.TrimPrefix(u, "https://notify.example.com/v1/unsubscribe/")
	got, err := k.Verify(token, now)
	require.NoError(t, err)
	assert.Equal(t, "acme", got.Tenant)
	assert.Equal(t, preferences.OptOut{Category: "marketing", Channel: "email"}, got.OptOut())
	assert.Equal(t, "user-1", got.Subscriber)
}

func TestTamperedOrExpiredLinksAreRefused(t *testing.T) {
	k := links(t, secret)
	now := time.Now()
	token, err := k.Token(preferences.Link{Tenant: "acme", Subscriber: "user-1", Category: "marketing", Channel: "email", Issued: now, Expires: now.Add(time.Hour)})
	require.NoError(t, err)
	_, err = k.Verify(token, now.Add(time.Hour))
	assert.ErrorIs(t, err, preferences.ErrExpiredLink)

	// Another subscriber, category or tenant in the payload with the old
	// signature.
	other, err := k.Token(preferences.Link{Tenant: "globex", Subscriber: "user-2", Category: "marketing", Channel: "*", Issued: now, Expires: now.Add(time.Hour)})
	require.NoError(t, err)
	p, sig, _ := strings.Cut(token, ".")
	op, osig, _ := strings.Cut(other, ".")
	flipped := []byte(sig)
	flipped[3] ^= 1
	for name, bad := range map[string]string{
		"payload of another link": op + "." + sig,
		"signature of another":    p + "." + osig,
		"flipped signature bit":   p + "." + string(flipped),
		"no signature":            p,
		"empty":                   "",
		"truncated":               token[:len(token)-2],
		"huge":                    strings.Repeat("a", 5000) + "." + sig,
	} {
		_, err := k.Verify(bad, now)
		assert.ErrorIs(t, err, preferences.ErrInvalidLink, name)
	}
	_, err = links(t, secret+"-other").Verify(token, now)
	assert.ErrorIs(t, err, preferences.ErrInvalidLink, "another secret's link")
}

func TestLinkConfiguration(t *testing.T) {
	env := func(vals map[string]string) func(string) string { return func(n string) string { return vals[n] } }
	_, err := preferences.ConfigFromEnv(env(map[string]string{preferences.EnvUnsubscribeSecret: "short"}))
	assert.ErrorContains(t, err, preferences.EnvUnsubscribeSecret)
	for _, bad := range []string{"http://notify.example.com", "notify.example.com", "https://x.example/?a=1"} {
		_, err = preferences.ConfigFromEnv(env(map[string]string{preferences.EnvPublicURL: bad}))
		assert.ErrorContains(t, err, preferences.EnvPublicURL, bad)
	}
	cfg, err := preferences.ConfigFromEnv(env(map[string]string{preferences.EnvPublicURL: "http://127.0.0.1:8080"}))
	require.NoError(t, err, "http on loopback is for local use")
	assert.Nil(t, cfg.Links(), "no secret, no links")
	cfg, err = preferences.ConfigFromEnv(env(map[string]string{preferences.EnvUnsubscribeSecret: secret}))
	require.NoError(t, err)
	_, err = cfg.Links().URL(preferences.Link{Subscriber: "u", Category: "marketing", Channel: "email", Expires: time.Now().Add(time.Hour)})
	assert.ErrorIs(t, err, preferences.ErrNoPublicURL)
}

func TestSecretRotation(t *testing.T) {
	const newer = "a-newer-secret-0123456789abcdef0123456789"
	now := time.Now()
	l := preferences.Link{Subscriber: "user-1", Category: "news", Channel: "email", Issued: now, Expires: now.Add(time.Hour)}
	old, err := links(t, secret).Token(l)
	require.NoError(t, err)
	rotating := links(t, newer+","+secret)
	_, err = rotating.Verify(old, now)
	assert.NoError(t, err, "a link signed with the old secret works while it is listed")
	fresh, err := rotating.Token(l)
	require.NoError(t, err)
	_, err = links(t, newer).Verify(fresh, now)
	assert.NoError(t, err, "the first secret signs")
	_, err = links(t, newer).Verify(old, now)
	assert.ErrorIs(t, err, preferences.ErrInvalidLink, "and once the old one is removed, its links stop working")

	_, err = preferences.ConfigFromEnv(func(name string) string {
		return map[string]string{preferences.EnvUnsubscribeSecret: newer + ",short"}[name]
	})
	assert.ErrorContains(t, err, "secret 2 is 5 bytes")
}

// TestEveryOneCharacterChangeOfALinkIsRefused: a link has one spelling.
// Each character replaced by each other character a URL could carry (the
// base64url alphabet, the separator, padding) is refused, the signature's
// last character included, whose unused low bits a lenient decoder ignores.
func TestEveryOneCharacterChangeOfALinkIsRefused(t *testing.T) {
	k := links(t, secret)
	now := time.Now()
	token, err := k.Token(preferences.Link{Tenant: "acme", Subscriber: "user-1", Category: "marketing", Channel: "email", Issued: now, Expires: now.Add(time.Hour)})
	require.NoError(t, err)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="
	for i := range token {
		for _, c := range alphabet {
			if byte(c) == token[i] {
				continue
			}
			changed := token[:i] + string(c) + token[i+1:]
			_, err := k.Verify(changed, now)
			require.ErrorIs(t, err, preferences.ErrInvalidLink, "position %d changed to %q was accepted", i, c)
		}
	}
}
