// Package revocation owns each subscriber's "not before" time: the moment
// until which every subscriber token (feed) and unsubscribe link
// (preferences) issued to the subscriber is refused, whatever its expiry.
//
// An app revokes a subscriber's credentials when it no longer trusts what
// it gave out (a stolen session, a password change, a leaked e-mail): the
// not-before time becomes now, and a token or link issued at or before it
// fails verification. Tokens and links are stateless (signed, never
// stored); this one key per subscriber is what makes them revocable, and
// it is read on every verification.
//
// The time is kept in milliseconds, so that a credential issued just after
// a revocation works at once; it is compared with the issue time signed
// into the credential, both taken from the clocks of the processes that
// issue and revoke (keep them in sync). It only moves forward, and it is
// kept as long as anything issued before it can still be valid (Keep),
// then expires.
package revocation

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow"
)

// Keep is how long a not-before time is kept after it was set: longer than
// the longest-lived credential it can refuse (an unsubscribe link lives up
// to 366 days, a subscriber token a day), with a day to spare for clocks.
// Once it has passed, everything issued before it has expired anyway.
const Keep = 367 * 24 * time.Hour

// ErrRevoked says a credential was issued at or before its subscriber's
// not-before time.
var ErrRevoked = errors.New("it was revoked: issued before the subscriber's credentials were revoked")

// Key is the Redis key of the not-before time of tenant's subscriber: in
// the subscriber's hash tag, as its preferences are.
func Key(tenant, subscriber string) string {
	return "onceflow:{prefs:" + onceflow.ScopedKey(tenant, subscriber) + "}:not-before"
}

// Store keeps the not-before times in Redis.
type Store struct{ rdb redis.UniversalClient }

// New returns a Store on rdb.
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

// revokeScript sets the not-before time to ARGV[1] (Unix milliseconds)
// unless it is already later, so that a revocation stamped by a host
// whose clock is behind never re-admits what another one refused; it
// returns the time in force.
var revokeScript = redis.NewScript(`
local at = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur > at then at = cur end
redis.call('SET', KEYS[1], at, 'PX', ARGV[2])
return at
`)

// Revoke refuses, from now on, every credential issued to tenant's
// subscriber at or before at, and returns the not-before time in force
// (at, or a later one already set).
func (s *Store) Revoke(ctx context.Context, tenant, subscriber string, at time.Time) (time.Time, error) {
	if err := check(tenant, subscriber); err != nil {
		return time.Time{}, err
	}
	ms, err := revokeScript.Run(ctx, s.rdb, []string{Key(tenant, subscriber)}, at.UnixMilli(), Keep.Milliseconds()).Int64()
	if err != nil {
		return time.Time{}, fmt.Errorf("revoke a subscriber's credentials: %w", err)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// NotBefore is the not-before time of tenant's subscriber; zero when the
// subscriber's credentials were never revoked (or so long ago that
// nothing issued before then is still valid).
func (s *Store) NotBefore(ctx context.Context, tenant, subscriber string) (time.Time, error) {
	if err := check(tenant, subscriber); err != nil {
		return time.Time{}, err
	}
	v, err := s.rdb.Get(ctx, Key(tenant, subscriber)).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read a subscriber's revocation: %w", err)
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("read a subscriber's revocation: %s holds %q, not Unix milliseconds", Key(tenant, subscriber), v)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// Check returns ErrRevoked when a credential of tenant's subscriber issued
// at issued must be refused, and an error of Redis when that cannot be
// known (the credential is then refused too, by the caller).
func (s *Store) Check(ctx context.Context, tenant, subscriber string, issued time.Time) error {
	nb, err := s.NotBefore(ctx, tenant, subscriber)
	if err != nil {
		return err
	}
	if !nb.IsZero() && !issued.After(nb) {
		return ErrRevoked
	}
	return nil
}

func check(tenant, subscriber string) error {
	if err := onceflow.ValidateTenant(tenant); err != nil {
		return err
	}
	return onceflow.ValidateSubscriber(subscriber)
}
