// Package ratelimit caps a channel's send rate across every worker with
// one Redis key per limit (onceflow:rate:{<channel>}): a generic cell rate algorithm (GCRA) whose state
// is the theoretical arrival time of the next send, kept by Redis's clock.
//
// A caller reserves a slot and waits until it comes, instead of failing and
// retrying, so a burst is spread at exactly the configured rate with one
// Redis round trip per send. A slot further away than the caller can wait
// is not reserved: the caller is told how long to wait and tries again
// later (a Temporal retry with that delay).
//
// The same algorithm keeps Budgets for the API's public routes: one key per
// caller (onceflow:limit:<name>:{<caller>}), where a request over its
// caller's budget is refused at once, with the time until it would be
// admitted, and charges nothing.
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, maxwait = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > maxwait then
  return {0, wait, tat}
end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil((tat + interval - now) / 1000) + 1000)
return {1, wait, tat}
`)

// Limiter hands out send slots at a fixed rate to every process that
// shares its Redis server; its state is the one key onceflow:rate:{<name>}.
type Limiter struct {
	rdb      redis.Scripter
	key      string
	interval time.Duration
}

// New returns a Limiter of perSecond sends per second named name.
func New(rdb redis.Scripter, name string, perSecond float64) (*Limiter, error) {
	if perSecond <= 0 {
		return nil, fmt.Errorf("ratelimit: %s: rate %v is not positive", name, perSecond)
	}
	return &Limiter{rdb: rdb, key: "onceflow:rate:{" + name + "}", interval: time.Duration(float64(time.Second) / perSecond)}, nil
}

// Reserve takes the next send slot if it comes within maxWait and returns
// how long until it does; the caller waits that long, then sends. ok is
// false when the next slot is further away than maxWait: nothing was
// reserved and wait says how long until it comes.
func (l *Limiter) Reserve(ctx context.Context, maxWait time.Duration) (wait time.Duration, ok bool, err error) {
	s, err := l.reserve(ctx, maxWait)
	return s.wait, s.ok, err
}

// slot is one reservation: whether it was taken, how far away it is, and
// when it is by Redis's clock (microseconds).
type slot struct {
	ok   bool
	wait time.Duration
	at   int64
}

func (l *Limiter) reserve(ctx context.Context, maxWait time.Duration) (slot, error) {
	res, err := reserveScript.Run(ctx, l.rdb, []string{l.key}, l.interval.Microseconds(), maxWait.Microseconds()).Int64Slice()
	if err != nil {
		return slot{}, fmt.Errorf("ratelimit: reserve %s: %w", l.key, err)
	}
	if len(res) != 3 {
		return slot{}, fmt.Errorf("ratelimit: reserve %s: unexpected reply %v", l.key, res)
	}
	return slot{ok: res[0] == 1, wait: time.Duration(res[1]) * time.Microsecond, at: res[2]}, nil
}

// ParseRates reads "sms=50,email=20": sends per second per channel.
func ParseRates(s string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, rate, found := strings.Cut(part, "=")
		r, err := strconv.ParseFloat(strings.TrimSpace(rate), 64)
		if !found || strings.TrimSpace(name) == "" || err != nil || r <= 0 {
			return nil, fmt.Errorf("%q is not channel=sends-per-second, e.g. sms=50", part)
		}
		out[strings.TrimSpace(name)] = r
	}
	return out, nil
}
