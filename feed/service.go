package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/revocation"
)

// Service is what the HTTP API and the CLI do with the in-app feeds,
// within one tenant (ForTenant): read a page, follow new items, mark items
// read. It checks the tenant and the subscriber before the store is
// reached, in one place for both.
type Service struct {
	store *Store
	// revoked holds the subscribers' not-before times, in store's Redis.
	revoked *revocation.Store
	tenant  string
}

// NewService returns the single tenant's Service on store.
func NewService(store *Store) *Service {
	return &Service{store: store, revoked: revocation.New(store.rdb)}
}

// Verify returns the claims of a subscriber token that g signed, that has
// not expired at now, and that was issued after its subscriber's
// not-before time (revocation): an error wrapping ErrToken otherwise, or
// Redis's error when the not-before time could not be read. The token
// names its tenant; s's does not matter.
func (s *Service) Verify(ctx context.Context, g *Signer, token string, now time.Time) (Claims, error) {
	c, err := g.Verify(token, now)
	if err != nil {
		return Claims{}, err
	}
	if err := s.Recheck(ctx, c); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// Recheck says whether a token Verify accepted has been revoked since: an
// error wrapping ErrToken if so, Redis's error when that cannot be known.
// A stream that outlives its verification asks it from time to time.
func (s *Service) Recheck(ctx context.Context, c Claims) error {
	err := s.revoked.Check(ctx, c.Tenant, c.Subscriber, c.Issued)
	if errors.Is(err, revocation.ErrRevoked) {
		return fmt.Errorf("%w: %w", ErrToken, err)
	}
	return err
}

// ForTenant returns a copy of s that works in tenant's scope; "" is the
// single tenant. An invalid tenant name makes every call fail with a
// *onceflow.ValidationError.
func (s *Service) ForTenant(tenant string) *Service {
	scoped := *s
	scoped.tenant = tenant
	return &scoped
}

// scope checks what every call needs: a valid tenant and subscriber id.
func (s *Service) scope(subscriber string) error {
	if err := onceflow.ValidateTenant(s.tenant); err != nil {
		return err
	}
	return onceflow.ValidateSubscriber(subscriber)
}

// Page returns a page of the subscriber's feed, newest first, from cursor
// ("" for the newest; a page's NextCursor for the next), with its unread
// count. limit is clamped to 1..MaxLimit; 0 means DefaultLimit.
func (s *Service) Page(ctx context.Context, subscriber, cursor string, limit int) (Page, error) {
	if err := s.scope(subscriber); err != nil {
		return Page{}, err
	}
	return s.store.Page(ctx, s.tenant, subscriber, cursor, limit)
}

// After returns up to limit items newer than cursor, oldest first: what a
// stream that resumes after cursor has missed.
func (s *Service) After(ctx context.Context, subscriber, cursor string, limit int) ([]Item, error) {
	if err := s.scope(subscriber); err != nil {
		return nil, err
	}
	return s.store.After(ctx, s.tenant, subscriber, cursor, limit)
}

// Subscribe follows the items written to the subscriber's feed from now
// on, until ctx is done or the Subscription is closed.
func (s *Service) Subscribe(ctx context.Context, subscriber string) (*Subscription, error) {
	if err := s.scope(subscriber); err != nil {
		return nil, err
	}
	return s.store.Subscribe(ctx, s.tenant, subscriber)
}

// MarkRead marks one item of the subscriber's feed read; an item that is
// not there (never written, or expired) is an error wrapping ErrNoItem.
func (s *Service) MarkRead(ctx context.Context, subscriber, item string) error {
	if err := s.scope(subscriber); err != nil {
		return err
	}
	return s.store.MarkRead(ctx, s.tenant, subscriber, item)
}

// MarkAllRead marks every item of the subscriber's feed read and returns
// how many were unread.
func (s *Service) MarkAllRead(ctx context.Context, subscriber string) (int, error) {
	if err := s.scope(subscriber); err != nil {
		return 0, err
	}
	return s.store.MarkAllRead(ctx, s.tenant, subscriber)
}
