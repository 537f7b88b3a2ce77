package preferences

import (
	"context"
	"errors"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/revocation"
)

// ErrNoUnsubscribeKey says the Service makes and follows no unsubscribe
// links: it was built without the secret that signs them.
var ErrNoUnsubscribeKey = errors.New("unsubscribe links need a secret: set " + EnvUnsubscribeSecret)

// Service is what the HTTP API and the CLI do with subscribers'
// preferences, within one tenant (ForTenant): read and replace them, make
// unsubscribe links, follow them. It is the one place that checks the
// tenant and the subscriber before the store is reached.
type Service struct {
	store *Store
	// links is nil without ONCEFLOW_UNSUBSCRIBE_SECRET: the link calls then
	// answer ErrNoUnsubscribeKey, the others work.
	links  *Links
	tenant string
}

// NewService returns the single tenant's Service on store; links, when not
// nil, makes and verifies unsubscribe links (Config.Links).
func NewService(store *Store, links *Links) *Service {
	return &Service{store: store, links: links}
}

// ForTenant returns a copy of s that works in tenant's scope; "" is the
// single tenant. An invalid tenant name makes every call but Unsubscribe
// (whose link names its tenant) fail with a *onceflow.ValidationError.
func (s *Service) ForTenant(tenant string) *Service {
	scoped := *s
	scoped.tenant = tenant
	return &scoped
}

// Tenant is the tenant whose subscribers s serves.
func (s *Service) Tenant() string { return s.tenant }

// Get returns the preferences of the tenant's subscriber; one who never
// set any has no opt-outs.
func (s *Service) Get(ctx context.Context, subscriber string) (Preferences, error) {
	return s.store.Get(ctx, s.tenant, subscriber)
}

// Set replaces the subscriber's preferences with p and returns them as
// stored. An invalid p, or one that opts out of a critical category, is a
// *onceflow.ValidationError naming the field and changes nothing. A
// notification already past its send_at keeps the decision it took.
func (s *Service) Set(ctx context.Context, subscriber string, p Preferences) (Preferences, error) {
	return s.store.Put(ctx, s.tenant, subscriber, p)
}

// UnsubscribeLink is a signed link that opts a subscriber out of a
// category on a channel, in one click and without a login.
type UnsubscribeLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
	Category  string    `json:"category"`
	Channel   string    `json:"channel"`
}

// NewUnsubscribeLink makes a link that opts the subscriber out of category
// on channel (either may be "*") for ttl. A critical category is refused:
// the link could not do what it says.
func (s *Service) NewUnsubscribeLink(subscriber, category, channel string, ttl time.Duration) (UnsubscribeLink, error) {
	if err := check(s.tenant, subscriber); err != nil {
		return UnsubscribeLink{}, err
	}
	if s.links == nil {
		return UnsubscribeLink{}, ErrNoUnsubscribeKey
	}
	o := OptOut{Category: category, Channel: channel}
	if err := o.Validate(""); err != nil {
		return UnsubscribeLink{}, err
	}
	if s.store.Critical().Has(category) {
		return UnsubscribeLink{}, &onceflow.ValidationError{Field: "category", Reason: "is a critical category (" + EnvCriticalCategories + "): it cannot be opted out of, so no link can do it"}
	}
	if err := ValidateTTL(ttl); err != nil {
		return UnsubscribeLink{}, err
	}
	now := time.Now()
	expires := now.Add(ttl).Truncate(time.Second).UTC()
	u, err := s.links.URL(Link{Tenant: s.tenant, Subscriber: subscriber, Category: category, Channel: channel, Issued: now, Expires: expires})
	if err != nil {
		return UnsubscribeLink{}, err
	}
	return UnsubscribeLink{URL: u, ExpiresAt: expires, Category: category, Channel: channel}, nil
}

// CheckUnsubscribeLink returns what the link's token would do, without
// doing it: ErrInvalidLink for a token not signed with the service's
// secret, ErrExpiredLink for one past its expiry, ErrRevokedLink for one
// issued at or before its subscriber's not-before time (package
// revocation), or Redis's error when that time could not be read.
func (s *Service) CheckUnsubscribeLink(ctx context.Context, token string) (Link, error) {
	if s.links == nil {
		return Link{}, ErrNoUnsubscribeKey
	}
	l, err := s.links.Verify(token, time.Now())
	if err != nil {
		return Link{}, err
	}
	err = s.store.revoked.Check(ctx, l.Tenant, l.Subscriber, l.Issued)
	if errors.Is(err, revocation.ErrRevoked) {
		return Link{}, ErrRevokedLink
	}
	if err != nil {
		return Link{}, err
	}
	return l, nil
}

// Unsubscribe follows an unsubscribe link: it adds the link's opt-out to
// its subscriber's preferences, in the link's tenant, which the signature
// vouches for (not the service's). A link that does not verify changes
// nothing. Following a link twice is the same as once.
func (s *Service) Unsubscribe(ctx context.Context, token string) (Link, error) {
	l, err := s.CheckUnsubscribeLink(ctx, token)
	if err != nil {
		return Link{}, err
	}
	return l, s.store.Add(ctx, l.Tenant, l.Subscriber, l.OptOut())
}
