package feed

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/onceflow/onceflow"
)

// EnvTokenSecret names the variable with the secret that signs subscriber
// tokens (or EnvTokenSecret_FILE, a file that holds it).
const EnvTokenSecret = "ONCEFLOW_SUBSCRIBER_TOKEN_SECRET"

// MinSecretLength is the shortest secret accepted: 256 bits of hex or
// base64 text.
const MinSecretLength = 32

// Token lifetimes: a browser gets a token for a session's page and asks
// the app's backend for a new one before it ends.
const (
	DefaultTokenTTL = 15 * time.Minute
	MaxTokenTTL     = 24 * time.Hour
)

// TokenPrefix starts every subscriber token, so that the API tells one
// from an app's bearer token without trying both.
const TokenPrefix = "ofs1."

// Signer mints and checks subscriber tokens: short-lived, signed
// (HMAC-SHA256) statements that the bearer may read one subscriber's feed
// in one tenant until a time. A token is
//
//	ofs1.<base64url JSON {"t": tenant, "s": subscriber, "e": unix seconds}>.<base64url HMAC>
//
// Nothing is stored: a token cannot be revoked before it expires, which is
// why its lifetime is short.
type Signer struct{ key []byte }

// NewSigner returns a Signer with secret, which must be at least
// MinSecretLength bytes.
func NewSigner(secret string) (*Signer, error) {
	if len(secret) < MinSecretLength {
		return nil, fmt.Errorf("%s is %d bytes; it must be at least %d (e.g. openssl rand -hex 32)", EnvTokenSecret, len(secret), MinSecretLength)
	}
	// The secret is not used as is, so that it signs nothing else by
	// accident.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("onceflow subscriber token v1"))
	return &Signer{key: mac.Sum(nil)}, nil
}

type claims struct {
	Tenant     string `json:"t,omitempty"`
	Subscriber string `json:"s"`
	Expires    int64  `json:"e"`
}

// Mint returns a token for tenant's subscriber that expires ttl from now
// (DefaultTokenTTL when zero, at most MaxTokenTTL), and when it expires.
func (g *Signer) Mint(tenant, subscriber string, ttl time.Duration, now time.Time) (string, time.Time, error) {
	if err := onceflow.ValidateTenant(tenant); err != nil {
		return "", time.Time{}, err
	}
	if err := onceflow.ValidateSubscriber(subscriber); err != nil {
		return "", time.Time{}, err
	}
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < time.Second || ttl > MaxTokenTTL {
		return "", time.Time{}, &onceflow.ValidationError{Field: "ttl", Reason: fmt.Sprintf("%v is not from 1s to %v", ttl, MaxTokenTTL)}
	}
	exp := now.Add(ttl).Truncate(time.Second)
	body, err := json.Marshal(claims{Tenant: tenant, Subscriber: subscriber, Expires: exp.Unix()})
	if err != nil {
		return "", time.Time{}, err
	}
	payload := TokenPrefix + base64.RawURLEncoding.EncodeToString(body)
	return payload + "." + base64.RawURLEncoding.EncodeToString(g.sign(payload)), exp, nil
}

func (g *Signer) sign(payload string) []byte {
	mac := hmac.New(sha256.New, g.key)
	mac.Write([]byte(payload))
	return mac.Sum(nil)
}

// ErrToken says a subscriber token is not valid; its message says why
// without repeating the token.
var ErrToken = errors.New("invalid subscriber token")

// Verify returns the tenant and subscriber of a token that this Signer
// minted and that has not expired at now.
func (g *Signer) Verify(token string, now time.Time) (tenant, subscriber string, expires time.Time, err error) {
	payload, sig, ok := strings.Cut(token[min(len(token), len(TokenPrefix)):], ".")
	if !strings.HasPrefix(token, TokenPrefix) || !ok {
		return "", "", time.Time{}, fmt.Errorf("%w: not of the form %s<claims>.<signature>", ErrToken, TokenPrefix)
	}
	// Strict: a signature has one spelling. Lenient decoding ignores the
	// unused low bits of the last character, so three other last
	// characters would decode to the same MAC and pass.
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(mac, g.sign(TokenPrefix+payload)) {
		return "", "", time.Time{}, fmt.Errorf("%w: the signature does not match", ErrToken)
	}
	body, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	var c claims
	if err == nil {
		err = json.Unmarshal(body, &c)
	}
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("%w: unreadable claims", ErrToken)
	}
	expires = time.Unix(c.Expires, 0)
	if !now.Before(expires) {
		return "", "", time.Time{}, fmt.Errorf("%w: it expired at %s", ErrToken, expires.UTC().Format(time.RFC3339))
	}
	return c.Tenant, c.Subscriber, expires, nil
}
