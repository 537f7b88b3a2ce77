package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// allowScript is the same GCRA as reserveScript, deciding at once instead
// of handing out a slot to wait for: a request is admitted when the
// theoretical arrival time it would push forward stays within
// ARGV[2] (burst × interval) of now; a refused request changes nothing
// and is told how long until it would be admitted.
var allowScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next = tat + interval
if next - now > tolerance then
  return {0, next - now - tolerance}
end
redis.call('SET', KEYS[1], next, 'PX', math.ceil((next - now) / 1000))
return {1, 0}
`)

// Limit is a budget of requests: Burst at once from a full budget, which
// regains one request every Interval. The zero Limit is off: it admits
// everything.
type Limit struct {
	Burst    int
	Interval time.Duration
}

// Off reports whether l admits everything.
func (l Limit) Off() bool { return l.Burst == 0 }

// String is l as ParseLimit reads it.
func (l Limit) String() string {
	if l.Off() {
		return "off"
	}
	return fmt.Sprintf("%d/%v", l.Burst, time.Duration(l.Burst)*l.Interval)
}

// ParseLimit reads "<n>/<period>[,burst=<b>]": n requests per period
// (e.g. 60/1m, 10/s), in bursts of up to b (n when not given); "off" is
// the zero Limit.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return Limit{}, nil
	}
	bad := fmt.Errorf("%q is not <requests>/<period>[,burst=<requests>] (e.g. 60/1m or 10/s,burst=100) or off", s)
	rate, burst, hasBurst := strings.Cut(s, ",")
	count, period, found := strings.Cut(rate, "/")
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if !found || err != nil || n < 1 {
		return Limit{}, bad
	}
	period = strings.TrimSpace(period)
	if period != "" && (period[0] < '0' || period[0] > '9') {
		period = "1" + period // "s" is "1s"
	}
	d, err := time.ParseDuration(period)
	if err != nil || d <= 0 {
		return Limit{}, bad
	}
	l := Limit{Burst: n, Interval: d / time.Duration(n)}
	if hasBurst {
		v, found := strings.CutPrefix(strings.TrimSpace(burst), "burst=")
		b, err := strconv.Atoi(v)
		if !found || err != nil || b < 1 {
			return Limit{}, bad
		}
		l.Burst = b
	}
	// The script counts in microseconds.
	if l.Interval < time.Microsecond {
		return Limit{}, fmt.Errorf("%q is more than one request per microsecond", s)
	}
	return l, nil
}

// Budgets holds one budget of the same Limit per caller (a client
// address, a subscriber), each in one Redis key,
// onceflow:limit:<name>:{<caller>}, shared by every process on that
// Redis and expiring once the budget is full again. Each check is one
// script on one key, so the keys of different callers spread over a Redis
// Cluster's primaries.
type Budgets struct {
	rdb    redis.Scripter
	prefix string
	limit  Limit
}

// NewBudgets returns the budgets named name (e.g. "feed:address") of
// limit l in rdb; with l off they admit everything without asking Redis.
func NewBudgets(rdb redis.Scripter, name string, l Limit) *Budgets {
	return &Budgets{rdb: rdb, prefix: "onceflow:limit:" + name + ":{", limit: l}
}

// Allow charges one request to caller's budget. ok is false when the
// budget is spent: nothing was charged, and retryAfter says how long
// until a request would be admitted.
func (b *Budgets) Allow(ctx context.Context, caller string) (retryAfter time.Duration, ok bool, err error) {
	if b.limit.Off() {
		return 0, true, nil
	}
	key := b.prefix + caller + "}"
	interval := b.limit.Interval.Microseconds()
	res, err := allowScript.Run(ctx, b.rdb, []string{key}, interval, int64(b.limit.Burst)*interval).Int64Slice()
	if err != nil {
		return 0, false, fmt.Errorf("ratelimit: allow %s: %w", b.prefix+"…}", err)
	}
	if len(res) != 2 {
		return 0, false, fmt.Errorf("ratelimit: allow %s: unexpected reply %v", b.prefix+"…}", res)
	}
	return time.Duration(res[1]) * time.Microsecond, res[0] == 1, nil
}
