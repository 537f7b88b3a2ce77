// Package dedup is the Redis dedup store that makes each delivery's side
// effect happen once in effect although its send activity runs at least once.
//
// Every delivery has one record, a Redis hash named
//
//	onceflow:{<notification key>}:<delivery ID>
//
// so that all records of a notification share one hash tag (one Redis
// Cluster slot; a key that starts with "}" gets a space before it inside
// the braces, see hashTag). Its fields:
//
//	s  state: "l" leased to an attempt, "f" free, "s" sent
//	t  fencing token of the attempt that last leased or committed it (a
//	   16-character hash of it: only equality matters, and records stay small)
//	u  lease end, in milliseconds on Redis's clock (only while leased)
//	r  the provider's receipt (only once sent)
//	o  the committing attempt's Outcome, when not Clean
//	a  "1" once an attempt may have sent without committing
//	w  the committing token's delivery (a hash of it, like t; see
//	   Claim.Mine); records committed before it was kept lack it
//
// A fencing token names one attempt. One of the form "<delivery>/<n>"
// names attempt n of a delivery (activities builds them as workflow ID/run
// ID/activity ID/attempt): a claim by another attempt of the same delivery
// learns that its own delivery committed the record, not another one.
//
// Beside them, one key per notification keeps the fingerprint of the payload
// that claimed its deliveries (onceflow.Notification.Fingerprint):
//
//	onceflow:{<notification key>}:fp
//
// Invariants, each kept by one Lua script that runs atomically in one round
// trip:
//
//   - A record in state sent is never leased again: Claim returns its receipt
//     and Outcome, and whether another attempt of the claiming token's own
//     delivery committed it (Mine), and the caller sends nothing.
//   - At most one attempt holds a live lease. Leases end by Redis's clock, so
//     workers' clocks do not matter.
//   - A lease that ended without a commit or release marks the record
//     ambiguous (a=1): that attempt may have sent. The mark is never cleared,
//     so every later claim reports it.
//   - A commit by a token that no longer holds the lease is applied but
//     reported as a takeover: two attempts may both have sent.
//   - Every write sets the record's TTL to the dedup window, which must
//     outlive the Temporal namespace's retention.
//   - A key belongs to one payload. A claim that carries a fingerprint
//     records it in the notification's fp key, unless that key holds
//     another fingerprint: then the claim is a Conflict, checked before
//     anything else, and writes nothing. The key with another payload is
//     thus refused, never reported as already sent, for as long as the
//     notification's records live: every write to a record also sets the
//     fp key's TTL to the dedup window.
//
// Redis is the ledger, so a Redis that may forget records must not be
// trusted silently: CheckDurability refuses one that may evict them and
// warns about one that may lose them, and WaitReplicas makes a claim count
// only once replicas have it (durability.go).
package dedup

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultWindow is how long a record is kept after its last write.
const DefaultWindow = 30 * 24 * time.Hour

var (
	claimScript = redis.NewScript(`
local fp = ARGV[4]
if fp ~= '' then
  local stored = redis.call('GET', KEYS[2])
  if stored and stored ~= fp then
    return {'conflict', '', '', ''}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = redis.call('HMGET', KEYS[1], 's', 't', 'u', 'r', 'a', 'o')
local state, holder, leaseEnd, receipt, ambiguous = rec[1], rec[2], tonumber(rec[3]), rec[4], rec[5]
if state == 's' then
  local mine = '0'
  if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'w') == ARGV[5] then mine = '1' end
  return {'sent', receipt or '', rec[6] or '', mine}
end
if state == 'l' and holder ~= ARGV[1] then
  if leaseEnd > now then
    return {'busy', tostring(leaseEnd - now), '', ''}
  end
  ambiguous = '1'
end
redis.call('HSET', KEYS[1], 's', 'l', 't', ARGV[1], 'u', now + tonumber(ARGV[2]))
if ambiguous == '1' then redis.call('HSET', KEYS[1], 'a', '1') end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if fp ~= '' then redis.call('SET', KEYS[2], fp, 'PX', ARGV[3]) end
return {'granted', ambiguous or '0', '', ''}
`)

	commitScript = redis.NewScript(`
local rec = redis.call('HMGET', KEYS[1], 's', 't')
local state, holder = rec[1], rec[2]
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if state == 's' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  if holder == ARGV[1] then return 'ok' end
  return 'takeover'
end
local outcome, note = 'ok', ARGV[4]
if holder and holder ~= ARGV[1] then outcome, note = 'takeover', 'u' end
redis.call('HSET', KEYS[1], 's', 's', 't', ARGV[1], 'r', ARGV[2])
if note ~= '' then redis.call('HSET', KEYS[1], 'o', note) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'w', ARGV[5]) end
redis.call('HDEL', KEYS[1], 'u')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return outcome
`)

	releaseScript = redis.NewScript(`
local rec = redis.call('HMGET', KEYS[1], 's', 't')
if rec[1] ~= 'l' or rec[2] ~= ARGV[1] then return 'not-holder' end
redis.call('HSET', KEYS[1], 's', 'f')
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'a', '1') end
redis.call('HDEL', KEYS[1], 'u')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 'ok'
`)

	fingerprintScript = redis.NewScript(`return redis.call('GET', KEYS[1])`)
)

// fence is what a record keeps of a fencing token: 96 bits of its SHA-256,
// plenty to tell one attempt's token from another's.
func fence(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// delivery is what a record keeps of the delivery a token's attempt
// belongs to (the part before its last "/"), or "" for a token that names
// none.
func delivery(token string) string {
	i := strings.LastIndex(token, "/")
	if i <= 0 {
		return ""
	}
	return fence(token[:i])
}

// Store keeps dedup records in Redis or Redis Cluster.
type Store struct {
	rdb redis.Scripter
	// cluster: rdb is a Redis Cluster, whose hash tags need hashTag.
	cluster      bool
	window       time.Duration
	waitReplicas int
	waitTimeout  time.Duration
}

// New returns a Store that keeps each record for window after its last
// write; zero means DefaultWindow.
func New(rdb redis.Scripter, window time.Duration, opts ...Option) *Store {
	if window <= 0 {
		window = DefaultWindow
	}
	s := &Store{rdb: rdb, window: window}
	_, s.cluster = rdb.(*redis.ClusterClient)
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Window is how long records are kept after their last write.
func (s *Store) Window() time.Duration { return s.window }

// Record names one delivery's record.
type Record struct {
	Key        string // the notification's idempotency key
	DeliveryID string
	// Fingerprint is the notification's payload fingerprint. Claim
	// records it for the key and refuses a key recorded with another one
	// (Conflict); empty skips both, as for an attempt scheduled before
	// fingerprints were passed on. Commit and Release ignore it.
	Fingerprint string
}

// recordKey is the Redis key of r's record.
func (s *Store) recordKey(r Record) string {
	return "onceflow:{" + s.hashTag(r.Key) + "}:" + r.DeliveryID
}

// fingerprintKey is the notification-level key that holds the fingerprint
// of the payload that claimed the key's deliveries, under the same hash tag
// as the records.
func (s *Store) fingerprintKey(key string) string {
	return "onceflow:{" + s.hashTag(key) + "}:fp"
}

// hashTag is what goes between the braces of a notification's keys: the
// key itself, so that they all hash to one slot. A key that starts with
// "}" would close the braces at once, and Redis hashes a key whose tag is
// empty as a whole: on a cluster the record and the fp key would fall in
// different slots, and every script, which touches both, would fail with
// CROSSSLOT. There such a key gets a space before it, which no key may
// contain (onceflow.ValidateKey), so that it names no other key's records.
// A single server keeps the key as it always has, so that records written
// before clusters were supported are still found (a record not found is a
// second send).
func (s *Store) hashTag(key string) string {
	if s.cluster && strings.HasPrefix(key, "}") {
		return " " + key
	}
	return key
}

// keys are the Redis keys every script touches: the record, then its
// notification's fingerprint key.
func (s *Store) keys(r Record) []string {
	return []string{s.recordKey(r), s.fingerprintKey(r.Key)}
}

// ClaimState is what a claim found.
type ClaimState int

const (
	// Granted: the caller holds the lease and may send.
	Granted ClaimState = iota + 1
	// AlreadySent: the delivery was committed; Claim.Receipt holds the
	// receipt and the caller must not send.
	AlreadySent
	// Busy: another attempt holds a live lease until Claim.LeaseLeft passes.
	Busy
	// Conflict: the key's deliveries were claimed by a notification with
	// another payload (Record.Fingerprint differs from the one recorded).
	// Nothing was written; the caller must not send.
	Conflict
)

// Outcome is what the attempt that committed a delivery knew about
// duplicates, kept so that a later claim can report it.
type Outcome string

const (
	// Clean: no earlier attempt may have sent the delivery.
	Clean Outcome = ""
	// Confirmed: an earlier attempt may have sent it, and the receiver
	// confirmed that it applied the delivery once.
	Confirmed Outcome = "c"
	// Unconfirmed: an earlier attempt may have sent it too; the receiver
	// may have it twice.
	Unconfirmed Outcome = "u"
)

// Claim is the answer to a claim.
type Claim struct {
	State ClaimState
	// Ambiguous (with Granted): an earlier attempt may have sent without
	// committing.
	Ambiguous bool
	// Receipt (with AlreadySent) is the committed provider receipt, and
	// Outcome what the committing attempt knew.
	Receipt string
	Outcome Outcome
	// Mine (with AlreadySent): an earlier attempt of the claiming token's
	// own delivery committed it (the tokens share their part before the
	// last "/"). False for a record committed before records kept it.
	Mine bool
	// LeaseLeft (with Busy) is how long the other attempt's lease still runs.
	LeaseLeft time.Duration
}

// Claim takes the lease on rec for the attempt with the fencing token, for
// lease, unless the delivery was already sent or another attempt holds a live
// lease. Claiming again with the token that holds the lease renews it.
// With WaitReplicas, a granted claim that too few replicas acknowledged is
// released and returned as ErrNotReplicated.
func (s *Store) Claim(ctx context.Context, rec Record, token string, lease time.Duration) (Claim, error) {
	if lease < time.Millisecond {
		return Claim{}, fmt.Errorf("dedup: claim %s: lease %v is shorter than 1ms", rec.DeliveryID, lease)
	}
	keys, args := s.keys(rec), []any{fence(token), lease.Milliseconds(), s.window.Milliseconds(), rec.Fingerprint, delivery(token)}
	var (
		res     []string
		acked   int64
		waitErr error
		err     error
	)
	if s.waitReplicas > 0 {
		res, acked, waitErr, err = s.claimAndWait(ctx, keys, args...)
		if err != nil && ctx.Err() != nil {
			// The wait outlasted the attempt's context, and the claim may
			// have been granted: nothing was sent on it, so let it go
			// rather than leave a lease the next attempt would wait out
			// and then report as ambiguous.
			_ = s.releaseUnsent(ctx, rec, token)
		}
	} else {
		res, err = claimScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	}
	if err != nil {
		return Claim{}, fmt.Errorf("dedup: claim %s: %w", rec.DeliveryID, err)
	}
	if len(res) != 4 {
		return Claim{}, fmt.Errorf("dedup: claim %s: unexpected reply %q", rec.DeliveryID, res)
	}
	switch res[0] {
	case "granted":
		if s.waitReplicas > 0 && (waitErr != nil || acked < int64(s.waitReplicas)) {
			return Claim{}, s.unreplicated(ctx, rec, token, acked, waitErr)
		}
		return Claim{State: Granted, Ambiguous: res[1] == "1"}, nil
	case "sent":
		return Claim{State: AlreadySent, Receipt: res[1], Outcome: Outcome(res[2]), Mine: res[3] == "1"}, nil
	case "busy":
		ms, err := strconv.ParseInt(res[1], 10, 64)
		if err != nil {
			return Claim{}, fmt.Errorf("dedup: claim %s: lease end %q: %w", rec.DeliveryID, res[1], err)
		}
		return Claim{State: Busy, LeaseLeft: time.Duration(ms) * time.Millisecond}, nil
	case "conflict":
		return Claim{State: Conflict}, nil
	}
	return Claim{}, fmt.Errorf("dedup: claim %s: unexpected reply %q", rec.DeliveryID, res)
}

// unreplicated releases a granted claim that too few replicas acknowledged
// and says why; nothing was sent on it.
func (s *Store) unreplicated(ctx context.Context, rec Record, token string, acked int64, waitErr error) error {
	why := fmt.Sprintf("%d of %d replicas acknowledged it within %v", acked, s.waitReplicas, s.waitTimeout)
	if waitErr != nil {
		why = fmt.Sprintf("WAIT failed: %v", waitErr)
	}
	released := "the lease was released"
	if err := s.releaseUnsent(ctx, rec, token); err != nil {
		released = fmt.Sprintf("the lease could not be released (%v) and runs out by itself", err)
	}
	return fmt.Errorf("claim %s (%s=%d): %s; nothing was sent and %s: %w",
		rec.DeliveryID, EnvWaitReplicas, s.waitReplicas, why, released, ErrNotReplicated)
}

// releaseUnsent releases token's lease on rec, on which nothing was sent,
// even when the wait for replicas used up ctx's time: ctx's deadline is
// replaced by the wait's timeout.
func (s *Store) releaseUnsent(ctx context.Context, rec Record, token string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.waitTimeout)
	defer cancel()
	return s.Release(ctx, rec, token, false)
}

// ErrTakenOver is returned by Commit when another attempt claimed the record
// after this token's lease ran out, or committed first. The commit is
// applied, but both attempts may have sent: a possible duplicate to report.
var ErrTakenOver = errors.New("dedup: another attempt took over the delivery; it may have been sent twice")

// Commit marks rec sent with the provider's receipt and what the attempt
// knew about duplicates, and drops the lease. Committing twice with the same
// token is harmless. A takeover is recorded as Unconfirmed.
func (s *Store) Commit(ctx context.Context, rec Record, token, receipt string, outcome Outcome) error {
	res, err := commitScript.Run(ctx, s.rdb, s.keys(rec), fence(token), receipt, s.window.Milliseconds(), string(outcome), delivery(token)).Text()
	if err != nil {
		return fmt.Errorf("dedup: commit %s: %w", rec.DeliveryID, err)
	}
	if res == "takeover" {
		return fmt.Errorf("commit %s: %w", rec.DeliveryID, ErrTakenOver)
	}
	return nil
}

// ErrNotHolder is returned by Release when the token no longer holds the
// lease; the record is left as it is.
var ErrNotHolder = errors.New("dedup: the token does not hold the lease")

// Release drops the lease of token so that the next attempt need not wait
// for it to run out. maybeSent says the attempt cannot rule out that the
// provider performed the side effect (a timeout mid-request, say); the
// record then stays ambiguous for every later claim.
func (s *Store) Release(ctx context.Context, rec Record, token string, maybeSent bool) error {
	flag := "0"
	if maybeSent {
		flag = "1"
	}
	res, err := releaseScript.Run(ctx, s.rdb, s.keys(rec), fence(token), flag, s.window.Milliseconds()).Text()
	if err != nil {
		return fmt.Errorf("dedup: release %s: %w", rec.DeliveryID, err)
	}
	if res == "not-holder" {
		return fmt.Errorf("release %s: %w", rec.DeliveryID, ErrNotHolder)
	}
	return nil
}

// Fingerprint returns the fingerprint recorded for the notification key by
// the claims of its deliveries, or "" when none is recorded: no delivery of
// it was claimed within the dedup window, or only by attempts that carried
// no fingerprint. It is one read, for a starter to refuse a conflicting
// payload before it starts anything.
func (s *Store) Fingerprint(ctx context.Context, key string) (string, error) {
	fp, err := fingerprintScript.Run(ctx, s.rdb, []string{s.fingerprintKey(key)}).Text()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("dedup: read the fingerprint of key %q: %w", key, err)
	}
	return fp, nil
}
