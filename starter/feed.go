package starter

import (
	"context"
	"errors"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/feed"
)

// FeedStore keeps subscribers' in-app feeds (feed.Store).
type FeedStore interface {
	Page(ctx context.Context, tenant, subscriber, cursor string, limit int) (feed.Page, error)
	MarkRead(ctx context.Context, tenant, subscriber, id string) error
	MarkAllRead(ctx context.Context, tenant, subscriber string) (int, error)
}

// feeds is how a Client reaches the in-app feeds.
type feeds struct {
	store  FeedStore
	signer *feed.Signer
}

// WithFeed lets the Client read and mark the in-app feeds of its tenant's
// subscribers, which the workers write to Redis (channel inapp).
func WithFeed(f FeedStore) Option { return func(c *Client) { c.feed.store = f } }

// WithSigner lets the Client mint subscriber tokens (SubscriberToken) with
// s, made from the API's ONCEFLOW_SUBSCRIBER_TOKEN_SECRET
// (feed.NewSigner).
func WithSigner(s *feed.Signer) Option { return func(c *Client) { c.feed.signer = s } }

// ErrNoSigner says the Client was built without WithSigner.
var ErrNoSigner = errors.New("subscriber tokens are signed with " + feed.EnvTokenSecret + " (starter.WithSigner)")

// SubscriberToken mints a token that lets a browser read and mark the
// subscriber's feed in the client's tenant through the HTTP API, and
// nothing else, for ttl (feed.DefaultTokenTTL when zero, at most
// feed.MaxTokenTTL). It returns the token and when it expires.
func (c *Client) SubscriberToken(subscriber string, ttl time.Duration) (string, time.Time, error) {
	if c.feed.signer == nil {
		return "", time.Time{}, ErrNoSigner
	}
	return c.feed.signer.Mint(c.tenant, subscriber, ttl, time.Now())
}

// ErrNoFeed says the Client was built without WithFeed.
var ErrNoFeed = errors.New("the in-app feed is kept in Redis; set REDIS_URL (starter.WithFeed)")

// feedScope checks what every feed call needs: a feed, a valid tenant and
// a valid subscriber id.
func (c *Client) feedScope(subscriber string) error {
	if c.feed.store == nil {
		return ErrNoFeed
	}
	if err := onceflow.ValidateTenant(c.tenant); err != nil {
		return err
	}
	return onceflow.ValidateSubscriber(subscriber)
}

// Feed returns a page of the subscriber's in-app feed in the client's
// tenant, newest first, from cursor ("" for the newest; a page's
// NextCursor for the next), with its unread count. limit is clamped to
// 1..feed.MaxLimit; 0 means feed.DefaultLimit.
func (c *Client) Feed(ctx context.Context, subscriber, cursor string, limit int) (feed.Page, error) {
	if err := c.feedScope(subscriber); err != nil {
		return feed.Page{}, err
	}
	return c.feed.store.Page(ctx, c.tenant, subscriber, cursor, limit)
}

// MarkRead marks one item of the subscriber's feed read; an item that is
// not there (never written, or expired) is an error wrapping
// feed.ErrNoItem.
func (c *Client) MarkRead(ctx context.Context, subscriber, item string) error {
	if err := c.feedScope(subscriber); err != nil {
		return err
	}
	return c.feed.store.MarkRead(ctx, c.tenant, subscriber, item)
}

// MarkAllRead marks every item of the subscriber's feed read and returns
// how many were unread.
func (c *Client) MarkAllRead(ctx context.Context, subscriber string) (int, error) {
	if err := c.feedScope(subscriber); err != nil {
		return 0, err
	}
	return c.feed.store.MarkAllRead(ctx, c.tenant, subscriber)
}
