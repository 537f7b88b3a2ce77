// Package preferences keeps what each subscriber agreed to receive: per
// tenant and subscriber, a set of opt-outs, each a category on a channel,
// either of which may be "*" (any). A delivery of a notification with a
// subscriber and a category is sent unless an opt-out matches its
// category and channel, or the category is critical (the worker's
// ONCEFLOW_CRITICAL_CATEGORIES): a critical category is delivered whatever
// the preferences say.
//
// Opt-outs only subtract, so no rule outranks another: "marketing on
// email", "anything on sms" ("*" / sms), "marketing anywhere" (marketing /
// "*") and "everything but the critical categories" ("*" / "*").
//
// Redis key (a wire contract: workers and APIs of different releases read
// it), one per subscriber with preferences, under its own hash tag so that
// it works unchanged on Redis Cluster:
//
//	onceflow:{prefs:<scoped subscriber>}:optouts   a SET of "<category>/<channel>"
//
// where <scoped subscriber> is onceflow.ScopedKey(tenant, subscriber): the
// bare id for the single tenant, <tenant>@<id> for a tenant's. Neither a
// subscriber id nor a tenant can hold '@', '/', '{' or '}', and a category
// can hold neither '/' nor '*', so no two subscribers share a key and a
// member splits one way. A subscriber without opt-outs has no key. The
// key does not expire: preferences last until changed.
//
// Links (links.go) are the signed, expiring unsubscribe links that add an
// opt-out without a login.
package preferences

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/revocation"
)

// Any matches every category or every channel in an opt-out.
const Any = "*"

// MaxOptOuts bounds a subscriber's opt-outs: every category of a large app
// on every channel fits.
const MaxOptOuts = 256

// OptOut says that the subscriber does not want Category on Channel.
type OptOut struct {
	// Category is a category name (onceflow.ValidateCategory) or "*".
	Category string `json:"category"`
	// Channel is a channel name or "*".
	Channel string `json:"channel"`
}

// Preferences is one subscriber's preferences: the JSON document of
// PUT and GET /v1/subscribers/{id}/preferences.
type Preferences struct {
	// OptOuts is sorted and has no repeats once stored.
	OptOuts []OptOut `json:"opt_outs"`
}

// member is the opt-out as a member of the Redis set.
func (o OptOut) member() string { return o.Category + "/" + o.Channel }

// Matches reports whether o covers category on channel.
func (o OptOut) Matches(category string, channel onceflow.Channel) bool {
	return (o.Category == Any || o.Category == category) && (o.Channel == Any || o.Channel == string(channel))
}

// Validate checks o; field prefixes the field names of its errors, e.g.
// "opt_outs[2]".
func (o OptOut) Validate(field string) error {
	if field != "" {
		field += "."
	}
	if o.Category != Any {
		if o.Category == "" {
			return &onceflow.ValidationError{Field: field + "category", Reason: `is required: a category name, or "*" for every category`}
		}
		if err := onceflow.ValidateCategory(o.Category); err != nil {
			return &onceflow.ValidationError{Field: field + "category", Reason: err.(*onceflow.ValidationError).Reason + `, or "*" for every category`}
		}
	}
	if o.Channel != Any && !slices.Contains(onceflow.Channels, onceflow.Channel(o.Channel)) {
		if o.Channel == "" {
			return &onceflow.ValidationError{Field: field + "channel", Reason: `is required: a channel, or "*" for every channel`}
		}
		return &onceflow.ValidationError{Field: field + "channel", Reason: fmt.Sprintf(`%q is not one of webhook, email, sms, push, chat, inapp, or "*"`, o.Channel)}
	}
	return nil
}

// Decode reads a Preferences document. Unknown fields are refused; every
// error is a *onceflow.ValidationError naming the field.
func Decode(r io.Reader) (Preferences, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var p Preferences
	if err := dec.Decode(&p); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return Preferences{}, &onceflow.ValidationError{Field: typeErr.Field, Reason: "must be a JSON " + typeErr.Type.Kind().String() + ", not " + typeErr.Value}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return Preferences{}, &onceflow.ValidationError{Field: strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), Reason: `is not a preferences field (the document is {"opt_outs": [{"category": ..., "channel": ...}]})`}
		case errors.Is(err, io.EOF):
			return Preferences{}, &onceflow.ValidationError{Field: "preferences", Reason: "is empty"}
		}
		return Preferences{}, &onceflow.ValidationError{Field: "preferences", Reason: "is not valid JSON: " + err.Error()}
	}
	if dec.More() {
		return Preferences{}, &onceflow.ValidationError{Field: "preferences", Reason: "has data after the JSON document"}
	}
	return p, nil
}

// Validate checks every opt-out, and that no opt-out names a category in
// critical, which cannot be opted out of.
func (p Preferences) Validate(critical Critical) error {
	if len(p.OptOuts) > MaxOptOuts {
		return &onceflow.ValidationError{Field: "opt_outs", Reason: fmt.Sprintf("lists %d opt-outs; at most %d are allowed", len(p.OptOuts), MaxOptOuts)}
	}
	for i, o := range p.OptOuts {
		field := fmt.Sprintf("opt_outs[%d]", i)
		if err := o.Validate(field); err != nil {
			return err
		}
		if err := critical.refuse(o, field); err != nil {
			return err
		}
	}
	return nil
}

// Allows reports whether p lets category go out on channel.
func (p Preferences) Allows(category string, channel onceflow.Channel) bool {
	for _, o := range p.OptOuts {
		if o.Matches(category, channel) {
			return false
		}
	}
	return true
}

// normalize sorts p's opt-outs and drops repeats; nil becomes empty, so
// that the JSON says [] rather than null.
func (p Preferences) normalize() Preferences {
	out := make([]OptOut, 0, len(p.OptOuts))
	seen := map[OptOut]bool{}
	for _, o := range p.OptOuts {
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].member() < out[j].member() })
	return Preferences{OptOuts: out}
}

// Critical is the set of categories that are delivered whatever a
// subscriber's preferences say (security alerts, invoices).
type Critical map[string]bool

// Has reports whether category is critical.
func (c Critical) Has(category string) bool { return c[category] }

// Names lists the critical categories, sorted.
func (c Critical) Names() []string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// refuse is the error for an opt-out that names a critical category. An
// opt-out of "*" is accepted: it covers every category but the critical
// ones.
func (c Critical) refuse(o OptOut, field string) error {
	if !c.Has(o.Category) {
		return nil
	}
	if field != "" {
		field += "."
	}
	return &onceflow.ValidationError{Field: field + "category", Reason: fmt.Sprintf("%q is a critical category (%s): it is delivered whatever the preferences say and cannot be opted out of", o.Category, EnvCriticalCategories)}
}

// ParseCritical reads a comma-separated list of category names, as
// ONCEFLOW_CRITICAL_CATEGORIES holds it. Empty is none.
func ParseCritical(list string) (Critical, error) {
	c := Critical{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if err := onceflow.ValidateCategory(name); err != nil {
			return nil, fmt.Errorf("%s: %q is not a category name (1 to 64 lower-case letters, digits, '-' and '_', starting with a letter or digit)", EnvCriticalCategories, name)
		}
		c[name] = true
	}
	return c, nil
}

// Store keeps preferences in Redis or Redis Cluster.
type Store struct {
	rdb      redis.UniversalClient
	critical Critical
	// revoked holds the subscribers' not-before times, which refuse their
	// unsubscribe links (Service).
	revoked *revocation.Store
}

// New returns a Store on rdb; critical are the categories that cannot be
// opted out of.
func New(rdb redis.UniversalClient, critical Critical) *Store {
	if critical == nil {
		critical = Critical{}
	}
	return &Store{rdb: rdb, critical: critical, revoked: revocation.New(rdb)}
}

// Critical is the store's set of critical categories.
func (s *Store) Critical() Critical { return s.critical }

// Key is the Redis key of the subscriber's opt-outs in tenant.
func Key(tenant, subscriber string) string {
	return "onceflow:{prefs:" + onceflow.ScopedKey(tenant, subscriber) + "}:optouts"
}

func check(tenant, subscriber string) error {
	if err := onceflow.ValidateTenant(tenant); err != nil {
		return err
	}
	return onceflow.ValidateSubscriber(subscriber)
}

// Get returns the subscriber's preferences; none stored is no opt-outs.
func (s *Store) Get(ctx context.Context, tenant, subscriber string) (Preferences, error) {
	if err := check(tenant, subscriber); err != nil {
		return Preferences{}, err
	}
	members, err := s.rdb.SMembers(ctx, Key(tenant, subscriber)).Result()
	if err != nil {
		return Preferences{}, fmt.Errorf("preferences: read subscriber %q: %w", subscriber, err)
	}
	var p Preferences
	for _, m := range members {
		category, channel, ok := strings.Cut(m, "/")
		if !ok {
			return Preferences{}, fmt.Errorf("preferences: subscriber %q has a malformed opt-out %q in %s", subscriber, m, Key(tenant, subscriber))
		}
		p.OptOuts = append(p.OptOuts, OptOut{Category: category, Channel: channel})
	}
	return p.normalize(), nil
}

// Put replaces the subscriber's preferences with p, in one step: a reader
// sees the old set or the new one. An invalid p, or one that opts out of a
// critical category, is a *onceflow.ValidationError and changes nothing.
// It returns p as stored.
func (s *Store) Put(ctx context.Context, tenant, subscriber string, p Preferences) (Preferences, error) {
	if err := check(tenant, subscriber); err != nil {
		return Preferences{}, err
	}
	if err := p.Validate(s.critical); err != nil {
		return Preferences{}, err
	}
	p = p.normalize()
	key := Key(tenant, subscriber)
	_, err := s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.Del(ctx, key)
		if len(p.OptOuts) > 0 {
			members := make([]any, len(p.OptOuts))
			for i, o := range p.OptOuts {
				members[i] = o.member()
			}
			tx.SAdd(ctx, key, members...)
		}
		return nil
	})
	if err != nil {
		return Preferences{}, fmt.Errorf("preferences: write subscriber %q: %w", subscriber, err)
	}
	return p, nil
}

// Add adds one opt-out to the subscriber's preferences, leaving the
// others; adding one already there changes nothing.
func (s *Store) Add(ctx context.Context, tenant, subscriber string, o OptOut) error {
	if err := check(tenant, subscriber); err != nil {
		return err
	}
	if err := o.Validate(""); err != nil {
		return err
	}
	if err := s.critical.refuse(o, ""); err != nil {
		return err
	}
	if err := s.rdb.SAdd(ctx, Key(tenant, subscriber), o.member()).Err(); err != nil {
		return fmt.Errorf("preferences: write subscriber %q: %w", subscriber, err)
	}
	return nil
}

// Decide says which of channels the subscriber's preferences keep category
// off: for each, the reason its deliveries are skipped, naming the category
// and the channel (never the subscriber or a recipient). A critical
// category is never kept off, whatever is stored.
func (s *Store) Decide(ctx context.Context, tenant, subscriber, category string, channels []onceflow.Channel) (map[onceflow.Channel]string, error) {
	if s.critical.Has(category) {
		return nil, nil
	}
	p, err := s.Get(ctx, tenant, subscriber)
	if err != nil {
		return nil, err
	}
	var skip map[onceflow.Channel]string
	for _, ch := range channels {
		if p.Allows(category, ch) {
			continue
		}
		if skip == nil {
			skip = map[onceflow.Channel]string{}
		}
		skip[ch] = SkipReason(category, ch)
	}
	return skip, nil
}

// SkipReason is the reason of a delivery skipped by an opt-out.
func SkipReason(category string, ch onceflow.Channel) string {
	return fmt.Sprintf("the subscriber opted out of category %q on channel %s; not sent", category, ch)
}
