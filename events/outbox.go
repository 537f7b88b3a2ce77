package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys. The outbox and its seen-IDs share one hash tag, so that the
// script that adds an event once is one atomic step on Redis Cluster too;
// each endpoint's streak has its own, so that the streak writes on the
// webhook path spread over the cluster.
const (
	streamKey = "onceflow:{events}:outbox"
	seenKey   = "onceflow:{events}:seen:"
	// streakKey is followed by {<hash of the origin>}: an origin may name
	// a customer, and Redis key names show up in monitoring tools.
	streakKey = "onceflow:endpoint:"
	// group is the consumer group of the workers' dispatchers.
	group = "dispatchers"
)

// DefaultSeenWindow is how long the outbox remembers an event's ID: longer
// than a delivery's retries may run (24h by default), so that a retried
// activity attempt that reports the same outcome adds nothing.
const DefaultSeenWindow = 72 * time.Hour

// MaxOutbox bounds the outbox, approximately, while the events receiver is
// away: past it, the oldest events are dropped rather than Redis's memory
// taken, since Redis is also the dedup ledger.
const MaxOutbox = 100_000

// streakIdle ends a failing streak that saw no attempt for this long past
// the configured duration: without traffic, an endpoint is not known to
// fail.
const streakIdle = 10 * time.Minute

// addOnce appends ARGV[2] to the outbox unless its ID (KEYS[2]) was seen.
var addOnce = redis.NewScript(`
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'id', ARGV[1], 'event', ARGV[2])
  return 1
end
return 0`)

// streakFailed records a failure of the endpoint whose streak is KEYS[1],
// by Redis's clock, so that every worker measures the streak alike. It
// returns the streak's start (ms) the first time the streak has lasted
// ARGV[1] ms, and false otherwise.
var streakFailed = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local since = tonumber(redis.call('HGET', KEYS[1], 'since'))
if not since then
  since = now
  redis.call('HSET', KEYS[1], 'since', since)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if now - since >= tonumber(ARGV[1]) and redis.call('HSETNX', KEYS[1], 'reported', '1') == 1 then
  return since
end
return false`)

// Outbox records events in Redis for a Dispatcher to POST. Its methods are
// called by the Deliver activity; each is one Redis round trip.
type Outbox struct {
	rdb redis.UniversalClient
	// FailingAfter is how long a webhook destination must fail before
	// endpoint.failing; zero means DefaultFailingAfter.
	FailingAfter time.Duration
	// SeenWindow is how long an event ID is remembered; zero means
	// DefaultSeenWindow.
	SeenWindow time.Duration
	now        func() time.Time
}

// NewOutbox returns the outbox in rdb.
func NewOutbox(rdb redis.UniversalClient, failingAfter time.Duration) *Outbox {
	return &Outbox{rdb: rdb, FailingAfter: failingAfter, now: time.Now}
}

// Delivery records a delivery's final failed or ambiguous outcome.
func (o *Outbox) Delivery(ctx context.Context, d Delivery) error {
	return o.add(ctx, d.Event(o.now()))
}

// EndpointFailed records a failed attempt to the destination at rawURL,
// and, the first time in a streak that the destination has failed for
// FailingAfter, records endpoint.failing.
func (o *Outbox) EndpointFailed(ctx context.Context, channel, rawURL string) error {
	origin := Origin(rawURL)
	if origin == "" {
		return nil
	}
	after := o.FailingAfter
	if after <= 0 {
		after = DefaultFailingAfter
	}
	res, err := streakFailed.Run(ctx, o.rdb, []string{streak(origin)}, after.Milliseconds(), (after + streakIdle).Milliseconds()).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("events: record the failure of %s: %w", origin, err)
	}
	ms, ok := res.(int64)
	if !ok {
		return fmt.Errorf("events: unexpected streak answer %v", res)
	}
	return o.add(ctx, endpointEvent(channel, origin, time.UnixMilli(ms), o.now()))
}

// EndpointOK ends the failing streak of the destination at rawURL, if any.
func (o *Outbox) EndpointOK(ctx context.Context, rawURL string) error {
	origin := Origin(rawURL)
	if origin == "" {
		return nil
	}
	if err := o.rdb.Del(ctx, streak(origin)).Err(); err != nil {
		return fmt.Errorf("events: end the failing streak of %s: %w", origin, err)
	}
	return nil
}

func (o *Outbox) add(ctx context.Context, e Event) error {
	body, err := encode(e)
	if err != nil {
		return err
	}
	window := o.SeenWindow
	if window <= 0 {
		window = DefaultSeenWindow
	}
	err = addOnce.Run(ctx, o.rdb, []string{streamKey, seenKey + e.ID}, e.ID, body, window.Milliseconds(), MaxOutbox).Err()
	if err != nil {
		return fmt.Errorf("events: record %s %s in the outbox: %w", e.Type, e.ID, err)
	}
	return nil
}

func streak(origin string) string {
	sum := sha256.Sum256([]byte(origin))
	return streakKey + "{" + hex.EncodeToString(sum[:8]) + "}"
}
