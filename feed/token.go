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
// tokens (or EnvTokenSecret_FILE, a file that holds it); several,
// comma-separated, while rotating.
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
//	ofs1.<base64url JSON {"t": tenant, "s": subscriber, "i": issued, unix ms, "e": expiry, unix seconds}>.<base64url HMAC>
//
// Nothing is stored per token. A token is revoked before it expires by
// removing the secret that signed it (all of them), or by its
// subscriber's not-before time (package revocation, checked by
// Service.Verify), which it is compared with by its issue time "i".
// Tokens minted before "i" existed lack it; they are taken as issued
// MaxTokenTTL before their expiry, the earliest they can have been, so
// that a revocation refuses every one that may predate it.
type Signer struct {
	// keys verify; the first signs.
	keys [][]byte
}

// NewSigner returns a Signer with secrets: one, or several separated by
// commas while rotating (the first signs, each verifies, so that tokens
// signed with a secret stop working when it is removed). Each must be at
// least MinSecretLength bytes; an error names the variable and the entry
// by its position, never its content.
func NewSigner(secrets string) (*Signer, error) {
	g := &Signer{}
	list := strings.Split(secrets, ",")
	for i, secret := range list {
		if len(secret) < MinSecretLength {
			entry := ""
			if len(list) > 1 {
				entry = fmt.Sprintf(" entry %d", i+1)
			}
			return nil, fmt.Errorf("%s%s is %d bytes; it must be at least %d (e.g. openssl rand -hex 32)", EnvTokenSecret, entry, len(secret), MinSecretLength)
		}
		// The secret is not used as is, so that it signs nothing else by
		// accident.
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte("onceflow subscriber token v1"))
		g.keys = append(g.keys, mac.Sum(nil))
	}
	return g, nil
}

// Keys is how many secrets verify tokens (the first also signs).
func (g *Signer) Keys() int { return len(g.keys) }

type claims struct {
	Tenant     string `json:"t,omitempty"`
	Subscriber string `json:"s"`
	Issued     int64  `json:"i,omitempty"`
	Expires    int64  `json:"e"`
}

// Claims are what a valid token says: whose feed it reads, when it was
// issued and until when it is valid.
type Claims struct {
	Tenant, Subscriber string
	Issued, Expires    time.Time
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
	body, err := json.Marshal(claims{Tenant: tenant, Subscriber: subscriber, Issued: now.UnixMilli(), Expires: exp.Unix()})
	if err != nil {
		return "", time.Time{}, err
	}
	payload := TokenPrefix + base64.RawURLEncoding.EncodeToString(body)
	return payload + "." + base64.RawURLEncoding.EncodeToString(sign(g.keys[0], payload)), exp, nil
}

func sign(key []byte, payload string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(payload))
	return mac.Sum(nil)
}

// ErrToken says a subscriber token is not valid; its message says why
// without repeating the token.
var ErrToken = errors.New("invalid subscriber token")

// Verify returns the claims of a token that one of this Signer's secrets
// signed and that has not expired at now. It does not know of
// revocations: Service.Verify does.
func (g *Signer) Verify(token string, now time.Time) (Claims, error) {
	payload, sig, ok := strings.Cut(token[min(len(token), len(TokenPrefix)):], ".")
	if !strings.HasPrefix(token, TokenPrefix) || !ok {
		return Claims{}, fmt.Errorf("%w: not of the form %s<claims>.<signature>", ErrToken, TokenPrefix)
	}
	// Strict: a signature has one spelling. Lenient decoding ignores the
	// unused low bits of the last character, so three other last
	// characters would decode to the same MAC and pass.
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	signed := false
	for _, key := range g.keys {
		// Every key is compared, in constant time, whichever matches.
		signed = hmac.Equal(mac, sign(key, TokenPrefix+payload)) || signed
	}
	if err != nil || !signed {
		return Claims{}, fmt.Errorf("%w: the signature does not match", ErrToken)
	}
	body, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	var c claims
	if err == nil {
		err = json.Unmarshal(body, &c)
	}
	if err != nil {
		return Claims{}, fmt.Errorf("%w: unreadable claims", ErrToken)
	}
	expires := time.Unix(c.Expires, 0)
	if !now.Before(expires) {
		return Claims{}, fmt.Errorf("%w: it expired at %s", ErrToken, expires.UTC().Format(time.RFC3339))
	}
	issued := expires.Add(-MaxTokenTTL)
	if c.Issued != 0 {
		issued = time.UnixMilli(c.Issued)
	}
	return Claims{Tenant: c.Tenant, Subscriber: c.Subscriber, Issued: issued, Expires: expires}, nil
}
