package dedup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the ledger: a record it loses lets a delivery be sent again. It
// loses records three ways, and this file guards against each:
//
//   - Eviction. Under memory pressure any maxmemory-policy but noeviction
//     drops keys, and records carry a TTL, so volatile-* policies drop them
//     too. CheckDurability refuses such a Redis.
//   - A restart without an append-only file. CheckDurability warns when Redis
//     has neither AOF nor a connected replica.
//   - A failover to a replica that had not yet received the claim. WAIT
//     (EnvWaitReplicas) makes a claim count only once replicas have it.

// CheckDurability asks the Redis behind rdb whether it can lose dedup
// records. It returns an error when Redis may evict them (maxmemory-policy
// other than noeviction), and warnings, to be logged, for what it cannot
// rule out: a Redis that will not say its policy (CONFIG disabled, as on
// some managed services), one with neither an append-only file nor a
// connected replica, or fewer connected replicas than waitReplicas (see
// EnvWaitReplicas). Messages carry only what Redis replied, never
// credentials. On a Redis Cluster (a *redis.ClusterClient) it checks
// every primary, and its messages name the primary.
func CheckDurability(ctx context.Context, rdb redis.Cmdable, waitReplicas int) (warnings []string, err error) {
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return checkNode(ctx, rdb, waitReplicas)
	}
	var mu sync.Mutex
	err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		addr := n.Options().Addr
		w, err := checkNode(ctx, n, waitReplicas)
		if err != nil {
			return fmt.Errorf("cluster primary %s: %w", addr, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, m := range w {
			warnings = append(warnings, "cluster primary "+addr+": "+m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(warnings)
	return warnings, nil
}

// checkNode is CheckDurability on one server.
func checkNode(ctx context.Context, rdb redis.Cmdable, waitReplicas int) (warnings []string, err error) {
	policy, err := rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	switch {
	case isReply(err):
		warnings = append(warnings, fmt.Sprintf("Redis would not report its maxmemory-policy (CONFIG GET: %v): "+
			"make sure it is noeviction (on a managed service, in its parameter group); "+
			"any other policy may evict dedup records and let deliveries be sent twice", err))
	case err != nil:
		return nil, fmt.Errorf("dedup: read Redis's maxmemory-policy: %w", err)
	case policy["maxmemory-policy"] == "":
		warnings = append(warnings, "Redis replied to CONFIG GET without a maxmemory-policy: "+
			"make sure it is noeviction; any other policy may evict dedup records and let deliveries be sent twice")
	case policy["maxmemory-policy"] != "noeviction":
		return nil, fmt.Errorf("dedup: Redis has maxmemory-policy %s, which may evict dedup records (they carry a TTL) "+
			"and let deliveries be sent twice; set maxmemory-policy noeviction "+
			"(CONFIG SET maxmemory-policy noeviction, and the same line in redis.conf so that it outlives a restart)",
			policy["maxmemory-policy"])
	}

	persistence, err := info(ctx, rdb, "persistence")
	if err != nil {
		return nil, err
	}
	replication, err := info(ctx, rdb, "replication")
	if err != nil {
		return nil, err
	}
	aof, aofKnown := persistence["aof_enabled"]
	replicas, replicasErr := strconv.Atoi(replication["connected_slaves"])
	if !aofKnown || replicasErr != nil {
		return append(warnings, "Redis would not report its persistence or replicas (INFO): "+
			"make sure it keeps an append-only file (appendonly yes) or runs replicas; "+
			"a Redis that restarts without them forgets which deliveries were sent"), nil
	}
	if aof != "1" && replicas == 0 {
		warnings = append(warnings, "Redis has no append-only file (appendonly no) and no connected replica: "+
			"a restart loses the dedup records written since the last snapshot, and those deliveries may be sent again; "+
			"set appendonly yes or run a replica")
	}
	if waitReplicas > replicas {
		warnings = append(warnings, fmt.Sprintf("%s=%d but Redis has %d connected replicas: "+
			"every claim fails, and nothing is sent, until %d are connected", EnvWaitReplicas, waitReplicas, replicas, waitReplicas))
	}
	return warnings, nil
}

// info returns the fields of one INFO section. A Redis that refuses the
// section gives no fields; an unreachable one an error.
func info(ctx context.Context, rdb redis.Cmdable, section string) (map[string]string, error) {
	text, err := rdb.Info(ctx, section).Result()
	if isReply(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dedup: read Redis's INFO %s: %w", section, err)
	}
	fields := map[string]string{}
	for line := range strings.Lines(text) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			fields[k] = v
		}
	}
	return fields, nil
}

// isReply reports whether err is Redis refusing a command (unknown, renamed,
// not permitted), as opposed to not answering.
func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, redis.Nil)
}

// EnvWaitReplicas is how many replicas must have a claim before it counts
// (Redis WAIT); unset or 0 counts a claim once the master has it.
const EnvWaitReplicas = "ONCEFLOW_REDIS_WAIT_REPLICAS"

// DefaultWaitTimeout is how long a claim waits for replicas to acknowledge
// it. Replicas on a LAN acknowledge within a millisecond; a second means one
// is lagging or gone, and the delivery is better retried than sent on a
// claim a failover could lose.
const DefaultWaitTimeout = time.Second

// Option configures a Store.
type Option func(*Store)

// WaitReplicas makes a claim count only once n replicas have acknowledged
// it (Redis WAIT), within timeout (zero means DefaultWaitTimeout); n of 0
// changes nothing. A claim granted on the master but not acknowledged in
// time is released, and Claim returns ErrNotReplicated: nothing may be sent
// on it. Commits do not wait: a commit lost in a failover leaves a
// replicated lease behind, which the next claim reports as Ambiguous, so
// the loss is visible and handled by the channel's ambiguity policy, never
// a silent duplicate; waiting there would cost a second replica round trip
// per delivery after the side effect, when nothing can be undone. It needs
// rdb to be a *redis.Client (one server or a Sentinel failover client),
// whose pipelines keep the claim and its WAIT on one connection, or a
// *redis.ClusterClient, whose claim and WAIT then go on one connection to
// the primary of the record's slot (WAIT counts that primary's replicas),
// with a ReadTimeout longer than timeout.
func WaitReplicas(n int, timeout time.Duration) Option {
	return func(s *Store) {
		if timeout <= 0 {
			timeout = DefaultWaitTimeout
		}
		s.waitReplicas, s.waitTimeout = n, timeout
	}
}

// ErrNotReplicated is returned by Claim when fewer replicas than
// WaitReplicas asked for acknowledged a granted claim in time. The lease
// was released; the caller must not send, and may retry.
var ErrNotReplicated = errors.New("dedup: too few Redis replicas acknowledged the claim")

// claimAndWait runs the claim script and WAIT in one pipeline: WAIT
// counts the replicas that have every write its connection made, so it must
// follow the claim on the same connection. acked is meaningful only when
// the claim was granted (a claim that finds the record sent or busy writes
// nothing).
func (s *Store) claimAndWait(ctx context.Context, keys []string, args ...any) (res []string, acked int64, waitErr, err error) {
	var c *redis.Client
	switch rdb := s.rdb.(type) {
	case *redis.Client:
		c = rdb
	case *redis.ClusterClient:
		// WAIT has no key: a cluster client would send it to any node.
		// The claim goes to the record's primary directly instead; if
		// the slot moved since the client last looked, the claim fails
		// with MOVED, writes nothing, and is retried like any Redis error.
		if c, err = rdb.MasterForKey(ctx, keys[0]); err != nil {
			return nil, 0, nil, fmt.Errorf("find the cluster primary of %s: %w", keys[0], err)
		}
	default:
		return nil, 0, nil, fmt.Errorf("%s needs a Redis client (*redis.Client) or a cluster client (*redis.ClusterClient), not %T", EnvWaitReplicas, s.rdb)
	}
	if rt := c.Options().ReadTimeout; rt > 0 && s.waitTimeout >= rt {
		return nil, 0, nil, fmt.Errorf("%s: the wait of %v must be shorter than the Redis client's read timeout of %v", EnvWaitReplicas, s.waitTimeout, rt)
	}
	run := func(eval func(redis.Pipeliner) *redis.Cmd) ([]string, int64, error, error) {
		pipe := c.Pipeline()
		claim := eval(pipe)
		wait := pipe.Do(ctx, "WAIT", s.waitReplicas, s.waitTimeout.Milliseconds())
		_, _ = pipe.Exec(ctx)
		res, err := claim.StringSlice()
		if err != nil {
			return nil, 0, nil, err
		}
		acked, waitErr := wait.Int64()
		return res, acked, waitErr, nil
	}
	res, acked, waitErr, err = run(func(p redis.Pipeliner) *redis.Cmd { return claimScript.EvalSha(ctx, p, keys, args...) })
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		res, acked, waitErr, err = run(func(p redis.Pipeliner) *redis.Cmd { return claimScript.Eval(ctx, p, keys, args...) })
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok && (err != nil || waitErr != nil) {
		// The claim bypassed the cluster client, which therefore saw
		// neither the dead primary nor the MOVED: have it look again, or
		// every retry would go to the same node until its next periodic
		// reload.
		cc.ReloadState(ctx)
	}
	return res, acked, waitErr, err
}
