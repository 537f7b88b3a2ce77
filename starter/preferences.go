package starter

import (
	"context"
	"errors"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/preferences"
)

// PreferenceStore keeps subscribers' preferences (preferences.Store).
type PreferenceStore interface {
	Get(ctx context.Context, tenant, subscriber string) (preferences.Preferences, error)
	Put(ctx context.Context, tenant, subscriber string, p preferences.Preferences) (preferences.Preferences, error)
	Add(ctx context.Context, tenant, subscriber string, o preferences.OptOut) error
	Critical() preferences.Critical
}

// subscribers is how a Client reaches subscribers' preferences.
type subscribers struct {
	store PreferenceStore
	links *preferences.Links
}

// WithPreferences lets the Client read and change subscribers'
// preferences in s, and, when links is not nil, make and follow
// unsubscribe links signed by it.
func WithPreferences(s PreferenceStore, links *preferences.Links) Option {
	return func(c *Client) { c.subscribers = subscribers{store: s, links: links} }
}

// Errors of a Client without what a call needs.
var (
	ErrNoPreferenceStore = errors.New("subscriber preferences are kept in Redis; set REDIS_URL (starter.WithPreferences)")
	ErrNoUnsubscribeKey  = errors.New("unsubscribe links need a secret: set " + preferences.EnvUnsubscribeSecret + " (starter.WithPreferences)")
)

func (c *Client) preferenceStore() (PreferenceStore, error) {
	if c.subscribers.store == nil {
		return nil, ErrNoPreferenceStore
	}
	return c.subscribers.store, onceflow.ValidateTenant(c.tenant)
}

// Preferences returns the preferences of the client's tenant's subscriber;
// one who never set any has no opt-outs.
func (c *Client) Preferences(ctx context.Context, subscriber string) (preferences.Preferences, error) {
	s, err := c.preferenceStore()
	if err != nil {
		return preferences.Preferences{}, err
	}
	return s.Get(ctx, c.tenant, subscriber)
}

// SetPreferences replaces the subscriber's preferences with p and returns
// them as stored. An invalid p, or one that opts out of a critical
// category, is a *onceflow.ValidationError naming the field and changes
// nothing. A notification already past its send_at keeps the decision it
// took.
func (c *Client) SetPreferences(ctx context.Context, subscriber string, p preferences.Preferences) (preferences.Preferences, error) {
	s, err := c.preferenceStore()
	if err != nil {
		return preferences.Preferences{}, err
	}
	return s.Put(ctx, c.tenant, subscriber, p)
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
func (c *Client) NewUnsubscribeLink(ctx context.Context, subscriber, category, channel string, ttl time.Duration) (UnsubscribeLink, error) {
	s, err := c.preferenceStore()
	if err != nil {
		return UnsubscribeLink{}, err
	}
	if c.subscribers.links == nil {
		return UnsubscribeLink{}, ErrNoUnsubscribeKey
	}
	if err := onceflow.ValidateSubscriber(subscriber); err != nil {
		return UnsubscribeLink{}, err
	}
	o := preferences.OptOut{Category: category, Channel: channel}
	if err := o.Validate(""); err != nil {
		return UnsubscribeLink{}, err
	}
	if s.Critical().Has(category) {
		return UnsubscribeLink{}, &onceflow.ValidationError{Field: "category", Reason: "is a critical category (" + preferences.EnvCriticalCategories + "): it cannot be opted out of, so no link can do it"}
	}
	if err := preferences.ValidateTTL(ttl); err != nil {
		return UnsubscribeLink{}, err
	}
	expires := time.Now().Add(ttl).Truncate(time.Second).UTC()
	u, err := c.subscribers.links.URL(preferences.Link{Tenant: c.tenant, Subscriber: subscriber, Category: category, Channel: channel, Expires: expires})
	if err != nil {
		return UnsubscribeLink{}, err
	}
	return UnsubscribeLink{URL: u, ExpiresAt: expires, Category: category, Channel: channel}, nil
}

// CheckUnsubscribeLink returns what the link's token would do, without
// doing it: preferences.ErrInvalidLink for a token not signed with the
// client's secret, preferences.ErrExpiredLink for one past its expiry.
func (c *Client) CheckUnsubscribeLink(token string) (preferences.Link, error) {
	if c.subscribers.links == nil {
		return preferences.Link{}, ErrNoUnsubscribeKey
	}
	return c.subscribers.links.Verify(token, time.Now())
}

// Unsubscribe follows an unsubscribe link: it adds the link's opt-out to
// its subscriber's preferences, in the link's tenant, which the signature
// vouches for (not the client's). A link that does not verify changes
// nothing. Following a link twice is the same as once.
func (c *Client) Unsubscribe(ctx context.Context, token string) (preferences.Link, error) {
	if c.subscribers.store == nil {
		return preferences.Link{}, ErrNoPreferenceStore
	}
	l, err := c.CheckUnsubscribeLink(token)
	if err != nil {
		return preferences.Link{}, err
	}
	return l, c.subscribers.store.Add(ctx, l.Tenant, l.Subscriber, l.OptOut())
}
