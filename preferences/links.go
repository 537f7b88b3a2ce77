package preferences

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/onceflow/onceflow"
)

// Environment variables read by ConfigFromEnv.
const (
	// EnvCriticalCategories lists the categories delivered whatever the
	// preferences say, comma-separated: security,billing.
	EnvCriticalCategories = "ONCEFLOW_CRITICAL_CATEGORIES"
	// EnvUnsubscribeSecret signs unsubscribe links: at least 32 bytes,
	// the same for the workers and the API; several, comma-separated,
	// while rotating (the first signs, each verifies). Also read as
	// ONCEFLOW_UNSUBSCRIBE_SECRET_FILE.
	EnvUnsubscribeSecret = "ONCEFLOW_UNSUBSCRIBE_SECRET"
	// EnvPublicURL is the base URL at which recipients reach the API,
	// e.g. https://notify.example.com: unsubscribe links start with it.
	EnvPublicURL = "ONCEFLOW_PUBLIC_URL"
)

// MinSecretLength is the shortest unsubscribe secret accepted.
const MinSecretLength = 32

// Link lifetimes. An e-mail is read, and its List-Unsubscribe used, weeks
// after it was sent; a link still has to end, so that one that leaked from
// an old message stops working.
const (
	DefaultLinkTTL = 60 * 24 * time.Hour
	MaxLinkTTL     = 366 * 24 * time.Hour
)

// LinkPath is where the API serves the unsubscribe page: LinkPath + token.
const LinkPath = "/v1/unsubscribe/"

// Config is the preferences configuration a worker and an API share.
type Config struct {
	Critical Critical
	// Secret signs and verifies unsubscribe links; empty means none.
	// Several, comma-separated: the first signs, each verifies.
	Secret string
	// PublicURL is the API's base URL as recipients reach it; empty means
	// no links can be made (they can still be verified).
	PublicURL string
}

// ConfigFromEnv reads the configuration; an error names its variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	critical, err := ParseCritical(getenv(EnvCriticalCategories))
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Critical: critical, Secret: getenv(EnvUnsubscribeSecret), PublicURL: strings.TrimSuffix(getenv(EnvPublicURL), "/")}
	if cfg.Secret != "" {
		for i, secret := range strings.Split(cfg.Secret, ",") {
			if len(secret) < MinSecretLength {
				return Config{}, fmt.Errorf("%s: secret %d is %d bytes; at least %d are required (e.g. openssl rand -hex 32)", EnvUnsubscribeSecret, i+1, len(secret), MinSecretLength)
			}
		}
	}
	if cfg.PublicURL != "" {
		if err := CheckPublicURL(cfg.PublicURL); err != nil {
			return Config{}, err
		}
	}
	return cfg, nil
}

// CheckPublicURL requires an absolute https URL (RFC 8058 requires HTTPS
// for one-click unsubscribe), or http on a loopback host for local use.
func CheckPublicURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%s=%q is not an absolute URL such as https://notify.example.com", EnvPublicURL, raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("%s=%q must be https (RFC 8058 one-click unsubscribe needs HTTPS); http is accepted for loopback only", EnvPublicURL, raw)
}

// Links returns the link signer of cfg, or nil when cfg has no secret.
func (cfg Config) Links() *Links {
	if cfg.Secret == "" {
		return nil
	}
	k := &Links{publicURL: cfg.PublicURL}
	for _, secret := range strings.Split(cfg.Secret, ",") {
		k.secrets = append(k.secrets, []byte(secret))
	}
	return k
}

// Link is what an unsubscribe link does when followed: add the opt-out of
// Category on Channel to the subscriber's preferences, until Expires. It
// was issued at Issued: a revocation of the subscriber's credentials
// (package revocation) at or after that time refuses it.
type Link struct {
	Tenant     string    `json:"t,omitempty"`
	Subscriber string    `json:"s"`
	Category   string    `json:"c"`
	Channel    string    `json:"h"`
	Issued     time.Time `json:"-"`
	Expires    time.Time `json:"-"`
}

// OptOut is the opt-out the link adds.
func (l Link) OptOut() OptOut { return OptOut{Category: l.Category, Channel: l.Channel} }

// Links signs and verifies unsubscribe links.
//
// A link is PublicURL + LinkPath + token; the token (a wire contract: links
// live on in people's mailboxes) is
//
//	base64url(payload) "." base64url(HMAC-SHA256(secret, "onceflow-unsubscribe-v1." + base64url(payload)))
//
// without padding, where payload is the JSON {"t": tenant (omitted for the
// single tenant), "s": subscriber, "c": category, "h": channel, "i": issue
// time in Unix milliseconds, "e": expiry in Unix seconds}. The subscriber
// id in it is the app's id, never an address. Verification compares MACs
// in constant time, then checks the expiry. The first secret signs; every
// secret verifies, so that a new secret can be put first while links
// signed with the old one, still in mailboxes, keep working until it is
// removed, which revokes them all. Links made before "i" existed lack it:
// they are taken as issued MaxLinkTTL before their expiry, the earliest
// they can have been, so that a revocation refuses every one that may
// predate it.
type Links struct {
	secrets   [][]byte
	publicURL string
}

// ErrNoPublicURL says links can be verified but not made: the public URL
// is not configured.
var ErrNoPublicURL = errors.New("unsubscribe links need the API's public URL: set " + EnvPublicURL)

// Link errors, as Verify returns them.
var (
	ErrInvalidLink = errors.New("the unsubscribe link is not valid")
	ErrExpiredLink = errors.New("the unsubscribe link has expired")
	// ErrRevokedLink is Service's: the app revoked the subscriber's
	// credentials after the link was issued.
	ErrRevokedLink = errors.New("the unsubscribe link was revoked")
)

const (
	macContext = "onceflow-unsubscribe-v1."
	// maxToken bounds a token before any work is done on it: a tenant, a
	// subscriber and a category at their longest fit with room to spare.
	maxToken = 1024
)

type payload struct {
	Link
	Iat int64 `json:"i,omitempty"`
	Exp int64 `json:"e"`
}

// URL returns the link for l and its token. l is checked as an opt-out;
// its expiry must be in the future.
func (k *Links) URL(l Link) (string, error) {
	if k.publicURL == "" {
		return "", ErrNoPublicURL
	}
	token, err := k.Token(l)
	if err != nil {
		return "", err
	}
	return k.publicURL + LinkPath + token, nil
}

// Token signs l; l.Issued is required.
func (k *Links) Token(l Link) (string, error) {
	if err := check(l.Tenant, l.Subscriber); err != nil {
		return "", err
	}
	if err := l.OptOut().Validate(""); err != nil {
		return "", err
	}
	if l.Issued.UnixMilli() <= 0 {
		return "", errors.New("an unsubscribe link needs the time it is issued")
	}
	body, err := json.Marshal(payload{Link: l, Iat: l.Issued.UnixMilli(), Exp: l.Expires.Unix()})
	if err != nil {
		return "", fmt.Errorf("encode unsubscribe link: %w", err)
	}
	p := base64.RawURLEncoding.EncodeToString(body)
	return p + "." + base64.RawURLEncoding.EncodeToString(mac(k.secrets[0], p)), nil
}

func mac(secret []byte, p string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(macContext + p))
	return m.Sum(nil)
}

// Verify returns the link token stands for: ErrInvalidLink when it was not
// signed with this secret (tampered, truncated, another installation's),
// ErrExpiredLink when it was but its expiry has passed at now. It does not
// know of revocations: Service does.
func (k *Links) Verify(token string, now time.Time) (Link, error) {
	if len(token) > maxToken {
		return Link{}, ErrInvalidLink
	}
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return Link{}, ErrInvalidLink
	}
	// Strict: a signature has one spelling (lenient decoding ignores the
	// unused low bits of the last character, so three other last
	// characters would pass as the same MAC).
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil {
		return Link{}, ErrInvalidLink
	}
	// Every secret is compared, whichever matches.
	signed := false
	for _, secret := range k.secrets {
		signed = hmac.Equal(got, mac(secret, p)) || signed
	}
	if !signed {
		return Link{}, ErrInvalidLink
	}
	body, err := base64.RawURLEncoding.Strict().DecodeString(p)
	if err != nil {
		return Link{}, ErrInvalidLink
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var pl payload
	if err := dec.Decode(&pl); err != nil {
		return Link{}, ErrInvalidLink
	}
	l := pl.Link
	l.Expires = time.Unix(pl.Exp, 0).UTC()
	l.Issued = l.Expires.Add(-MaxLinkTTL)
	if pl.Iat != 0 {
		l.Issued = time.UnixMilli(pl.Iat).UTC()
	}
	// Signed by us, so valid when made; checked again so that a link never
	// writes a key no API would.
	if check(l.Tenant, l.Subscriber) != nil || l.OptOut().Validate("") != nil {
		return Link{}, ErrInvalidLink
	}
	if !now.Before(l.Expires) {
		return l, ErrExpiredLink
	}
	return l, nil
}

// ValidateTTL checks the lifetime asked of a new link.
func ValidateTTL(ttl time.Duration) error {
	if ttl <= 0 || ttl > MaxLinkTTL {
		return &onceflow.ValidationError{Field: "expires_in", Reason: fmt.Sprintf("must be a duration from 1s to %s, such as \"720h\"", MaxLinkTTL)}
	}
	return nil
}
