// Package feed is the in-app feed: each subscriber's notifications, kept
// in Redis by Onceflow itself, newest first, with a read flag, expiring
// after a configurable time, and published live as they arrive.
//
// Here Onceflow is the receiver as well as the sender, so a delivery needs
// no claim, send and commit: one Lua script checks the delivery's dedup
// record, writes the item and commits the record, atomically. An attempt
// either ran the script or did not; there is no window in which the item
// is written and the record is not, so an in-app delivery is never
// ambiguous: a retry finds the record committed (suppressed) or finds
// nothing at all (and writes the item).
//
// All of one subscriber's keys share one hash tag, T = onceflow.ScopedKey
// (tenant, subscriber) (a subscriber id and a tenant name start with a
// letter or digit and carry neither braces nor '@', so T is never empty
// and no two feeds share one):
//
//	onceflow:feed:{T}:items      sorted set: item id -> score
//	onceflow:feed:{T}:unread     sorted set: the unread subset of items
//	onceflow:feed:{T}:data       hash: item id -> item JSON (id, key, subject, body)
//	onceflow:feed:{T}:d:<dlv>    hash: the delivery's dedup record
//	onceflow:feed:{T}:live       pub/sub channel: "<score>\n<item JSON>" per new item
//
// The dedup record of an in-app delivery lives under the subscriber's tag,
// not under the notification's key as other channels' records do
// (dedup.Store): that is what puts the record and the feed in one Redis
// Cluster slot, so that one script can write both. Its fields follow
// dedup's record: s "s" (sent), t the committing attempt's fencing token's
// hash, r the receipt, and two of its own: w the hash of the activity the
// attempt belongs to (so that a later attempt of the same activity knows
// the item is its own), f the notification's payload fingerprint (the same
// key with another payload is a conflict and writes nothing).
//
// An item's score is its creation time in milliseconds on Redis's clock
// times 1024, raised to one more than the newest item's when that is not
// larger, so scores are unique within a feed and increase with each item:
// the score is the item's cursor. An item expires TTL after it was
// written: reads ignore older items, each write trims them, and every
// write sets the feed's keys to expire TTL after it, so an idle feed
// vanishes whole. The item id is the delivery ID, so the same delivery
// never shows twice even after its dedup record has expired.
package feed

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
)

// EnvTTL names the variable with how long feed items are kept.
const EnvTTL = "ONCEFLOW_FEED_TTL" // 720h

// DefaultTTL is how long an item stays in its feed after it was written.
const DefaultTTL = 30 * 24 * time.Hour

// MaxLimit bounds a page.
const MaxLimit = 100

// DefaultLimit is a page's size when none is asked for.
const DefaultLimit = 20

// TTLFromEnv reads EnvTTL through getenv: DefaultTTL when unset, an error
// naming the variable when it is not a positive duration.
func TTLFromEnv(getenv func(string) string) (time.Duration, error) {
	v := getenv(EnvTTL)
	if v == "" {
		return DefaultTTL, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("%s=%q is not a duration of at least 1s, such as 720h", EnvTTL, v)
	}
	return d, nil
}

// scoreScale makes room for 1024 items per millisecond in a score and
// keeps it exact in a float64 (now in ms times 1024 is about 2^51).
const scoreScale = 1024

var (
	deliverScript = redis.NewScript(`
local fp = ARGV[3]
local rec = redis.call('HMGET', KEYS[1], 's', 'w', 'f', 'r')
if fp ~= '' and rec[3] and rec[3] ~= fp then
  return {'conflict', ''}
end
if rec[1] == 's' then
  -- A write, so that a WAIT after it covers the write that committed it.
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  if rec[2] == ARGV[2] then return {'mine', rec[4] or ''} end
  return {'sent', rec[4] or ''}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[7])
local cutoff = string.format('%.0f', (now - ttl) * 1024)
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. cutoff, 'LIMIT', 0, 1000)
if #old > 0 then
  redis.call('HDEL', KEYS[3], unpack(old))
  redis.call('ZREM', KEYS[2], unpack(old))
  redis.call('ZREM', KEYS[4], unpack(old))
end
local id = ARGV[4]
local score = redis.call('ZSCORE', KEYS[2], id)
if not score then
  score = now * 1024
  local last = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if #last > 0 and tonumber(last[2]) >= score then score = tonumber(last[2]) + 1 end
  score = string.format('%.0f', score)
  redis.call('ZADD', KEYS[2], score, id)
  redis.call('ZADD', KEYS[4], score, id)
  redis.call('HSET', KEYS[3], id, ARGV[5])
  redis.call('PUBLISH', ARGV[8], score .. '\n' .. ARGV[5])
end
for k = 2, 4 do redis.call('PEXPIRE', KEYS[k], ttl) end
local receipt = 'feed item ' .. id
redis.call('HSET', KEYS[1], 's', 's', 't', ARGV[1], 'w', ARGV[2], 'r', receipt)
if fp ~= '' then redis.call('HSET', KEYS[1], 'f', fp) end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {'written', receipt}
`)

	// pageScript returns the unread count, then id, score, JSON and
	// unread flag of each item from ARGV[2] (a score, exclusive; "+inf"
	// for the newest) down to the cutoff, at most ARGV[3] of them; newest
	// first, or oldest first from ARGV[2] up when ARGV[4] is "up".
	pageScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cutoff = string.format('%.0f', (now - tonumber(ARGV[1])) * 1024)
local ids
if ARGV[4] == 'up' then
  local from = ARGV[2]
  if tonumber(from) < tonumber(cutoff) then from = cutoff else from = '(' .. from end
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], from, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
else
  local from = ARGV[2]
  if from ~= '+inf' then from = '(' .. from end
  ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], from, cutoff, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
end
local out = {redis.call('ZCOUNT', KEYS[3], cutoff, '+inf')}
for i = 1, #ids, 2 do
  local unread = redis.call('ZSCORE', KEYS[3], ids[i]) and '1' or '0'
  out[#out + 1] = ids[i]
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], ids[i]) or ''
  out[#out + 1] = unread
end
return out
`)

	readScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) < (now - tonumber(ARGV[2])) * 1024 then return -1 end
return redis.call('ZREM', KEYS[2], ARGV[1])
`)
)

// Store keeps the feeds in Redis or Redis Cluster.
type Store struct {
	rdb          redis.UniversalClient
	ttl          time.Duration
	window       time.Duration
	waitReplicas int
	waitTimeout  time.Duration
}

// Option configures a Store.
type Option func(*Store)

// WaitReplicas makes a delivery count only once n replicas have
// acknowledged its write (Redis WAIT, as dedup.WaitReplicas does for a
// claim), within timeout (zero means dedup.DefaultWaitTimeout); n of 0
// changes nothing. The item and its record replicate together, so a
// failover loses both or neither; a delivery that too few replicas
// acknowledged returns an error wrapping ErrNotReplicated, and the next
// attempt finds the record (and waits again) or finds nothing (and writes
// again).
func WaitReplicas(n int, timeout time.Duration) Option {
	return func(s *Store) {
		if timeout <= 0 {
			timeout = dedup.DefaultWaitTimeout
		}
		s.waitReplicas, s.waitTimeout = n, timeout
	}
}

// ErrNotReplicated says too few replicas acknowledged a delivery's write.
var ErrNotReplicated = errors.New("too few Redis replicas acknowledged the feed write")

// New returns a Store whose items expire ttl after they were written and
// whose delivery records are kept for window (the dedup window); zero
// means DefaultTTL and dedup.DefaultWindow.
func New(rdb redis.UniversalClient, ttl, window time.Duration, opts ...Option) *Store {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if window <= 0 {
		window = dedup.DefaultWindow
	}
	s := &Store{rdb: rdb, ttl: ttl, window: window}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// TTL is how long items are kept.
func (s *Store) TTL() time.Duration { return s.ttl }

// prefix is what every key of the feed of tenant's subscriber starts with.
func prefix(tenant, subscriber string) string {
	return "onceflow:feed:{" + onceflow.ScopedKey(tenant, subscriber) + "}:"
}

// Channel is the pub/sub channel on which the feed's new items appear.
func Channel(tenant, subscriber string) string { return prefix(tenant, subscriber) + "live" }

// Item is one entry of a feed.
type Item struct {
	// ID is the delivery's ID: the same for every attempt of it.
	ID string `json:"id"`
	// Key is the notification's idempotency key as its caller chose it.
	Key     string    `json:"key"`
	Subject string    `json:"subject,omitempty"`
	Body    string    `json:"body"`
	Created time.Time `json:"created_at"`
	Read    bool      `json:"read"`
	// Cursor is the item's place in the feed: pass it as a page's cursor
	// for the items older than it, or as a stream's Last-Event-ID for
	// those newer.
	Cursor string `json:"cursor"`
}

// stored is what the data hash keeps of an item; the rest comes from its
// score and the unread set.
type stored struct {
	ID      string `json:"id"`
	Key     string `json:"key"`
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body"`
}

// Delivery is one in-app delivery: an item for a subscriber's feed, and
// what its dedup record needs.
type Delivery struct {
	Tenant     string
	Subscriber string
	// DeliveryID names the record and becomes the item's ID.
	DeliveryID string
	// Key is the notification's key as its caller chose it.
	Key     string
	Subject string
	Body    string
	// Fingerprint is the notification's payload fingerprint; "" skips the
	// conflict check.
	Fingerprint string
	// Token is the attempt's fencing token, and Activity the part of it
	// that all attempts of the activity share.
	Token    string
	Activity string
}

// Outcome is what Deliver did.
type Outcome int

const (
	// Written: the item was written and the record committed, now.
	Written Outcome = iota + 1
	// Mine: an earlier attempt of the same activity wrote it (its worker
	// died before reporting); nothing was written now.
	Mine
	// AlreadySent: another activity or notification with this key wrote
	// it; nothing was written now.
	AlreadySent
	// Conflict: the record holds another payload's fingerprint; nothing
	// was written.
	Conflict
)

// hash is what a record keeps of a token: only equality matters.
func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// Deliver writes d's item to its subscriber's feed and commits its dedup
// record, in one atomic step, unless the record is already committed. It
// returns the outcome and the receipt. An error means the script may or
// may not have run; either way the record and the feed agree, and calling
// again tells which.
func (s *Store) Deliver(ctx context.Context, d Delivery) (Outcome, string, error) {
	if err := onceflow.ValidateSubscriber(d.Subscriber); err != nil {
		return 0, "", err
	}
	item, err := json.Marshal(stored{ID: d.DeliveryID, Key: d.Key, Subject: d.Subject, Body: d.Body})
	if err != nil {
		return 0, "", fmt.Errorf("feed: encode item %s: %w", d.DeliveryID, err)
	}
	p := prefix(d.Tenant, d.Subscriber)
	keys := []string{p + "d:" + d.DeliveryID, p + "items", p + "data", p + "unread"}
	args := []any{hash(d.Token), hash(d.Activity), d.Fingerprint, d.DeliveryID,
		string(item), s.window.Milliseconds(), s.ttl.Milliseconds(), p + "live"}
	var res []string
	if s.waitReplicas > 0 {
		res, err = s.deliverAndWait(ctx, keys, args)
	} else {
		res, err = deliverScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	}
	if err != nil {
		return 0, "", fmt.Errorf("feed: deliver %s: %w", d.DeliveryID, err)
	}
	if len(res) != 2 {
		return 0, "", fmt.Errorf("feed: deliver %s: unexpected reply %q", d.DeliveryID, res)
	}
	switch res[0] {
	case "written":
		return Written, res[1], nil
	case "mine":
		return Mine, res[1], nil
	case "sent":
		return AlreadySent, res[1], nil
	case "conflict":
		return Conflict, "", nil
	}
	return 0, "", fmt.Errorf("feed: deliver %s: unexpected reply %q", d.DeliveryID, res)
}

// Page is a page of a feed, newest first.
type Page struct {
	Items []Item `json:"items"`
	// Unread counts the feed's unread items, not the page's.
	Unread int `json:"unread"`
	// NextCursor fetches the next, older page; nil (null) on the last.
	NextCursor *string `json:"next_cursor"`
}

// ErrCursor says a cursor is not one a feed gave out.
var ErrCursor = errors.New("not a feed cursor (use an item's cursor or a page's next_cursor)")

func parseCursor(c string) (uint64, error) {
	n, err := strconv.ParseUint(c, 10, 53)
	if err != nil {
		return 0, fmt.Errorf("cursor %q: %w", c, ErrCursor)
	}
	return n, nil
}

// Page returns up to limit items of the subscriber's feed older than
// cursor ("" for the newest), newest first, and the unread count. limit
// is clamped to 1..MaxLimit; 0 means DefaultLimit.
func (s *Store) Page(ctx context.Context, tenant, subscriber, cursor string, limit int) (Page, error) {
	from := "+inf"
	if cursor != "" {
		if _, err := parseCursor(cursor); err != nil {
			return Page{}, err
		}
		from = cursor
	}
	limit = clamp(limit)
	unread, items, err := s.run(ctx, tenant, subscriber, from, limit+1, "down")
	if err != nil {
		return Page{}, err
	}
	p := Page{Items: items, Unread: unread}
	if len(items) > limit {
		p.Items = items[:limit]
		p.NextCursor = &p.Items[limit-1].Cursor
	}
	if p.Items == nil {
		p.Items = []Item{}
	}
	return p, nil
}

// After returns up to limit items newer than cursor, oldest first: what a
// stream that resumes after cursor has missed.
func (s *Store) After(ctx context.Context, tenant, subscriber, cursor string, limit int) ([]Item, error) {
	if _, err := parseCursor(cursor); err != nil {
		return nil, err
	}
	_, items, err := s.run(ctx, tenant, subscriber, cursor, clamp(limit), "up")
	return items, err
}

func clamp(limit int) int {
	switch {
	case limit <= 0:
		return DefaultLimit
	case limit > MaxLimit:
		return MaxLimit
	}
	return limit
}

func (s *Store) run(ctx context.Context, tenant, subscriber, from string, limit int, dir string) (int, []Item, error) {
	if err := onceflow.ValidateSubscriber(subscriber); err != nil {
		return 0, nil, err
	}
	p := prefix(tenant, subscriber)
	res, err := pageScript.Run(ctx, s.rdb, []string{p + "items", p + "data", p + "unread"}, s.ttl.Milliseconds(), from, limit, dir).Slice()
	if err != nil {
		return 0, nil, fmt.Errorf("feed: read the feed of subscriber %q: %w", subscriber, err)
	}
	if len(res) == 0 || (len(res)-1)%4 != 0 {
		return 0, nil, fmt.Errorf("feed: read the feed of subscriber %q: unexpected reply of %d values", subscriber, len(res))
	}
	unread, _ := res[0].(int64)
	var items []Item
	for i := 1; i < len(res); i += 4 {
		id, _ := res[i].(string)
		score, _ := res[i+1].(string)
		data, _ := res[i+2].(string)
		flag, _ := res[i+3].(string)
		it, err := decode(score, data)
		if err != nil {
			return 0, nil, fmt.Errorf("feed: item %s of subscriber %q: %w", id, subscriber, err)
		}
		it.Read = flag != "1"
		items = append(items, it)
	}
	return int(unread), items, nil
}

// decode builds an item from its score and stored JSON.
func decode(score, data string) (Item, error) {
	var st stored
	if err := json.Unmarshal([]byte(data), &st); err != nil {
		return Item{}, fmt.Errorf("decode: %w", err)
	}
	n, err := parseCursor(score)
	if err != nil {
		return Item{}, err
	}
	return Item{ID: st.ID, Key: st.Key, Subject: st.Subject, Body: st.Body,
		Created: time.UnixMilli(int64(n / scoreScale)).UTC(), Cursor: score}, nil
}

// ErrNoItem says the feed has no such item: never written, or expired.
var ErrNoItem = errors.New("no such item in the feed")

// MarkRead marks one item read; marking it again is harmless.
func (s *Store) MarkRead(ctx context.Context, tenant, subscriber, id string) error {
	if err := onceflow.ValidateSubscriber(subscriber); err != nil {
		return err
	}
	p := prefix(tenant, subscriber)
	n, err := readScript.Run(ctx, s.rdb, []string{p + "items", p + "unread"}, id, s.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("feed: mark item %s read: %w", id, err)
	}
	if n < 0 {
		return fmt.Errorf("item %q: %w", id, ErrNoItem)
	}
	return nil
}

// MarkAllRead marks every item of the feed read and returns how many were
// unread.
func (s *Store) MarkAllRead(ctx context.Context, tenant, subscriber string) (int, error) {
	if err := onceflow.ValidateSubscriber(subscriber); err != nil {
		return 0, err
	}
	key := prefix(tenant, subscriber) + "unread"
	// ZCARD and DEL in one transaction, on the one key.
	var card *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		card = p.ZCard(ctx, key)
		p.Del(ctx, key)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("feed: mark all read: %w", err)
	}
	return int(card.Val()), nil
}

// Subscription receives a feed's new items as they are written.
type Subscription struct {
	ps *redis.PubSub
	// C delivers the items; it is closed when the subscription ends.
	C <-chan Item
}

// Close ends the subscription.
func (s *Subscription) Close() error { return s.ps.Close() }

// Subscribe starts receiving the subscriber's new items. It returns once
// Redis has confirmed the subscription, so that every item written after
// it returns is received: read what came before with Page or After. One
// subscription holds one Redis connection.
func (s *Store) Subscribe(ctx context.Context, tenant, subscriber string) (*Subscription, error) {
	if err := onceflow.ValidateSubscriber(subscriber); err != nil {
		return nil, err
	}
	ps := s.rdb.Subscribe(ctx, Channel(tenant, subscriber))
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("feed: subscribe to the feed of subscriber %q: %w", subscriber, err)
	}
	out := make(chan Item, 16)
	go func() {
		defer close(out)
		for msg := range ps.Channel() {
			score, data, ok := strings.Cut(msg.Payload, "\n")
			if !ok {
				continue
			}
			it, err := decode(score, data)
			if err != nil {
				continue
			}
			select {
			case out <- it:
			default:
				// A reader that falls 16 items behind loses the
				// subscription; its stream ends and the client resumes
				// from its last cursor.
				_ = ps.Close()
				return
			}
		}
	}()
	return &Subscription{ps: ps, C: out}, nil
}

// deliverAndWait runs the delivery script and WAIT in one pipeline on one
// connection to the primary of the feed's slot: WAIT counts the replicas
// that have every write of its connection.
func (s *Store) deliverAndWait(ctx context.Context, keys []string, args []any) ([]string, error) {
	var c *redis.Client
	switch rdb := s.rdb.(type) {
	case *redis.Client:
		c = rdb
	case *redis.ClusterClient:
		var err error
		if c, err = rdb.MasterForKey(ctx, keys[0]); err != nil {
			return nil, fmt.Errorf("find the cluster primary of %s: %w", keys[0], err)
		}
	default:
		return nil, fmt.Errorf("%s needs a Redis client or a cluster client, not %T", dedup.EnvWaitReplicas, s.rdb)
	}
	run := func(eval func(redis.Pipeliner) *redis.Cmd) ([]string, int64, error, error) {
		pipe := c.Pipeline()
		script := eval(pipe)
		wait := pipe.Do(ctx, "WAIT", s.waitReplicas, s.waitTimeout.Milliseconds())
		_, _ = pipe.Exec(ctx)
		res, err := script.StringSlice()
		if err != nil {
			return nil, 0, nil, err
		}
		acked, waitErr := wait.Int64()
		return res, acked, waitErr, nil
	}
	res, acked, waitErr, err := run(func(p redis.Pipeliner) *redis.Cmd { return deliverScript.EvalSha(ctx, p, keys, args...) })
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		res, acked, waitErr, err = run(func(p redis.Pipeliner) *redis.Cmd { return deliverScript.Eval(ctx, p, keys, args...) })
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok && (err != nil || waitErr != nil) {
		// The pipeline bypassed the cluster client: have it look again.
		cc.ReloadState(ctx)
	}
	switch {
	case err != nil:
		return nil, err
	case len(res) > 0 && res[0] == "conflict":
		return res, nil // nothing was written
	case waitErr != nil:
		return nil, fmt.Errorf("%s=%d: WAIT failed (%v): %w", dedup.EnvWaitReplicas, s.waitReplicas, waitErr, ErrNotReplicated)
	case acked < int64(s.waitReplicas):
		return nil, fmt.Errorf("%s=%d: %d acknowledged within %v: %w", dedup.EnvWaitReplicas, s.waitReplicas, acked, s.waitTimeout, ErrNotReplicated)
	}
	return res, nil
}
