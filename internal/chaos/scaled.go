//go:build linux

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/internal/pgproc"
	"github.com/onceflow/onceflow/internal/redisproc"
	"github.com/onceflow/onceflow/starter"
)

// Scaled is the scaled-out topology, on one machine: the Temporal server
// (its own process, `onceflow dev --db`) on PostgreSQL with several
// history shards, a Redis Cluster with one replica per primary, the
// worker processes on the cluster, and API processes (`onceflow api`, each
// on its own loopback port) that every notification is started through;
// each of a notification's concurrent starts goes to the next API in
// turn. Its Redis fault is the SIGKILL of a primary: its replica takes
// over, and the killed node comes back as the new primary's replica, as a
// restarted pod would. The single-server faults (Config.RedisRestarts,
// RedisKills) do not apply to it.
type Scaled struct {
	On bool
	// HistoryShards of the Temporal server, fixed when its database is
	// created; 0 means 4.
	HistoryShards int
	// Primaries of the Redis Cluster, each with one replica; 0 means 3.
	Primaries int
	// APIs is how many `onceflow api` processes there are; 0 means 2.
	APIs int
	// PrimaryKills are SIGKILLs of a Redis primary, spread over the
	// sending like the other planned faults.
	PrimaryKills int
	// WaitReplicas is the workers' ONCEFLOW_REDIS_WAIT_REPLICAS: with 1 a
	// claim counts only once the primary's replica has it, so a failover
	// cannot lose it.
	WaitReplicas int
}

func (s Scaled) shards() int    { return orDefault(s.HistoryShards, 4) }
func (s Scaled) primaries() int { return orDefault(s.Primaries, 3) }
func (s Scaled) apis() int      { return orDefault(s.APIs, 2) }

func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// check says what in s cannot run, naming the field.
func (s Scaled) check(cfg Config) error {
	switch {
	case !s.On:
		if s.PrimaryKills > 0 {
			return errors.New("Scaled.PrimaryKills needs the scaled topology (Scaled.On): a single redis-server has no replica to take over")
		}
		return nil
	case cfg.RedisRestarts > 0 || cfg.RedisKills > 0:
		return errors.New("RedisRestarts and RedisKills act on the single redis-server; the scaled topology's Redis fault is Scaled.PrimaryKills")
	case s.HistoryShards < 0 || s.Primaries < 0 || s.APIs < 0 || s.PrimaryKills < 0 || s.WaitReplicas < 0:
		return fmt.Errorf("Scaled: HistoryShards %d, Primaries %d, APIs %d, PrimaryKills %d and WaitReplicas %d must not be negative",
			s.HistoryShards, s.Primaries, s.APIs, s.PrimaryKills, s.WaitReplicas)
	case s.WaitReplicas > 1:
		return fmt.Errorf("Scaled.WaitReplicas %d: each primary has one replica", s.WaitReplicas)
	case s.primaries() < 3:
		return fmt.Errorf("Scaled.Primaries %d: a Redis Cluster needs at least 3 primaries", s.primaries())
	}
	return nil
}

// env is what the scaled topology adds to the workers' and APIs'
// environment.
func (s Scaled) env() []string {
	if !s.On {
		return nil
	}
	return []string{dedup.EnvWaitReplicas + "=" + strconv.Itoa(s.WaitReplicas)}
}

// describe is the topology as the report prints it.
func (s Scaled) describe(workers int) string {
	return fmt.Sprintf("Temporal on PostgreSQL with %d history shards; Redis Cluster of %d primaries with a replica each (%s=%d); %d worker and %d API processes",
		s.shards(), s.primaries(), dedup.EnvWaitReplicas, s.WaitReplicas, workers, s.apis())
}

// scaledStack is what the scaled topology runs besides what every run has.
type scaledStack struct {
	pg      *pgproc.Server
	cluster *redisproc.Cluster
}

// startScaledStores starts PostgreSQL, for the Temporal server, and the
// Redis Cluster, and points h at the cluster.
func (h *harness) startScaledStores() (stop func(), err error) {
	s := h.cfg.Scaled
	if !redisproc.Available() || !pgproc.Available() {
		return nil, errors.New("the scaled topology needs redis-server, redis-cli and PostgreSQL (apt-get install -y redis-server postgresql)")
	}
	st := &scaledStack{}
	// Temporal's pool on PostgreSQL is 20 connections per store
	// (internal/devstack/postgres.go); the default 100 leaves room.
	if st.pg, err = pgproc.Start(); err != nil {
		return nil, err
	}
	if st.cluster, err = redisproc.StartCluster(filepath.Join(h.cfg.Dir, "redis-cluster"), s.primaries(), 1, ""); err != nil {
		st.pg.Stop()
		return nil, err
	}
	h.scaled = st
	h.redisURL = st.cluster.URL()
	h.rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: st.cluster.Addrs(), MaxRetries: -1})
	h.rep.Topology = s.describe(h.cfg.Workers)
	h.log.Info("Scaled stores", "postgres", st.pg.Addr, "redis cluster", strings.Join(st.cluster.Addrs(), ","))
	return func() {
		_ = h.rdb.Close()
		st.cluster.Stop()
		st.pg.Stop()
	}, nil
}

// temporalDB are the Temporal server's arguments that put it on
// PostgreSQL, none on the single-server topology (SQLite in its data dir).
func (h *harness) temporalDB() []string {
	if h.scaled == nil {
		return nil
	}
	return []string{"--db", h.scaled.pg.URL("temporal"), "--history-shards", strconv.Itoa(h.cfg.Scaled.shards())}
}

// notifier starts a notification and waits for its result: a
// starter.Client, or the API processes (apiSender).
type notifier interface {
	Send(ctx context.Context, n onceflow.Notification) (starter.Started, error)
	Wait(ctx context.Context, key string) (onceflow.Result, error)
}

// apiSender starts notifications through the API processes' POST
// /v1/notifications, each call on the next one, and waits for their
// results on Temporal.
type apiSender struct {
	urls []string
	http *http.Client
	wait *starter.Client
	next atomic.Uint64
	// accepted counts the 202s of each API.
	accepted []atomic.Int64
	log      *slog.Logger
	// seen are the kinds of failed answer already logged, each logged once.
	seen sync.Map
}

func (a *apiSender) Send(ctx context.Context, n onceflow.Notification) (starter.Started, error) {
	i := int(a.next.Add(1)-1) % len(a.urls)
	body, err := json.Marshal(n)
	if err != nil {
		return starter.Started{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.urls[i]+"/v1/notifications", bytes.NewReader(body))
	if err != nil {
		return starter.Started{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	// An RFC 8941 sf-string; the harness's keys need no escapes.
	req.Header.Set("Idempotency-Key", strconv.Quote(n.Key))
	resp, err := a.http.Do(req)
	if err != nil {
		return starter.Started{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusAccepted {
		err := fmt.Errorf("POST %s/v1/notifications: %s: %s", a.urls[i], resp.Status, bytes.TrimSpace(b))
		if _, logged := a.seen.LoadOrStore(resp.StatusCode, true); !logged {
			a.log.Warn("start through the API failed; retrying (further failures with this status are not logged)", "error", err)
		}
		return starter.Started{}, err
	}
	var acc struct {
		starter.Started
		Key string `json:"key"`
	}
	if err := json.Unmarshal(b, &acc); err != nil || acc.Key != n.Key || acc.WorkflowID == "" {
		return starter.Started{}, fmt.Errorf("POST %s/v1/notifications: a 202 that is not the notification's (%v): %s", a.urls[i], err, b)
	}
	a.accepted[i].Add(1)
	acc.Started.Key = acc.Key
	return acc.Started, nil
}

func (a *apiSender) Wait(ctx context.Context, key string) (onceflow.Result, error) {
	return a.wait.Wait(ctx, key)
}

// startAPIProcesses starts the `onceflow api` processes, each on a loopback
// port of its own, with env (Temporal's address and the cluster's
// REDIS_URL, for the ledger), and waits until each answers /healthz.
func (h *harness) startAPIProcesses(ctx context.Context, env []string) (*apiSender, func(), error) {
	n := h.cfg.Scaled.apis()
	a := &apiSender{http: &http.Client{Timeout: 30 * time.Second}, wait: starter.New(h.tc, ""), accepted: make([]atomic.Int64, n), log: h.log}
	var procs []*process
	stop := func() {
		for _, p := range procs {
			_, _ = p.stop(syscall.SIGTERM)
		}
		h.mu.Lock()
		for i := range a.accepted {
			h.rep.APIAccepted = append(h.rep.APIAccepted, int(a.accepted[i].Load()))
		}
		h.mu.Unlock()
	}
	for i := range n {
		port, err := freeport.Get()
		if err != nil {
			stop()
			return nil, nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		p := &process{name: fmt.Sprintf("api-%d", i+1), log: filepath.Join(h.cfg.Dir, fmt.Sprintf("api-%d.out", i+1)),
			args: []string{h.cfg.Binary, "api", "--addr", addr}}
		if err := p.start(env); err != nil {
			stop()
			return nil, nil, err
		}
		procs = append(procs, p)
		a.urls = append(a.urls, "http://"+addr)
	}
	for i, u := range a.urls {
		if err := healthy(ctx, a.http, u, procs[i]); err != nil {
			stop()
			return nil, nil, err
		}
	}
	h.log.Info("API processes", "urls", strings.Join(a.urls, ","))
	return a, stop, nil
}

// healthy waits, for up to a minute, until the API at url answers
// /healthz with 200.
func healthy(ctx context.Context, c *http.Client, url string, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		if !p.running() {
			return fmt.Errorf("%s exited before it served (see %s)", p.name, p.log)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
		resp, err := c.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		last = err
		sleep(ctx, 100*time.Millisecond)
	}
	return fmt.Errorf("%s at %s never answered /healthz: %v", p.name, url, last)
}

// Cluster fault kinds, as the report names them: the SIGKILL of a primary,
// its replica's takeover (every slot served again), and the killed node's
// return as a replica.
const (
	redisPrimaryKill = "redis primary SIGKILL"
	redisFailover    = "redis failover"
	redisRejoined    = "redis node back as replica"
)

// killPrimary SIGKILLs the Redis primary that holds a random open
// notification's dedup record, so that the kill falls on deliveries under
// way; waits for its replica to take over; and, 2 s later, as an
// orchestrator restarts a crashed pod, starts the killed node again on
// its files, and waits until it has rejoined as the new primary's
// replica. The open deliveries whose records that primary held are marked
// as such: a failover is a cause for an ambiguous outcome.
func (h *harness) killPrimary(ctx context.Context, rng *rand.Rand) {
	cc := h.rdb.(*redis.ClusterClient)
	open := h.openDeliveries()
	keys := make([]string, 0, len(open))
	for k := range open {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	record := "onceflow:{chaos}:primary"
	if len(keys) > 0 {
		k := keys[rng.IntN(len(keys))]
		record = recordKey(k, open[k])
	}
	primary, err := cc.MasterForKey(ctx, record)
	if err != nil {
		h.harnessError("%s: find the primary of %s: %v", redisPrimaryKill, record, err)
		return
	}
	addr := primary.Options().Addr
	victim := h.scaled.cluster.Node(addr)
	if victim == nil {
		h.harnessError("%s: the primary %s is no node of the cluster", redisPrimaryKill, addr)
		return
	}
	var on []string
	for _, k := range keys {
		if m, err := cc.MasterForKey(ctx, recordKey(k, open[k])); err == nil && m.Options().Addr == addr {
			on = append(on, k)
		}
	}
	h.mu.Lock()
	for _, k := range on {
		h.failedOver[k] = true
	}
	h.rep.OnKilledPrimary += len(on)
	h.mu.Unlock()
	h.log.Info("SIGKILL", "process", "redis primary "+addr, "open records", len(on))
	killed := time.Now()
	victim.Kill()
	h.count(redisPrimaryKill)

	nodes := len(h.scaled.cluster.Nodes)
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := h.scaled.cluster.WaitHealthy(wait, nodes-1); err != nil {
		h.harnessError("%s: no replica took over from %s: %v", redisPrimaryKill, addr, err)
	} else {
		h.count(redisFailover)
		h.log.Info("redis failover", "primary", addr, "after", time.Since(killed).Round(time.Millisecond))
	}
	sleep(ctx, 2*time.Second)
	if err := victim.Restart(); err != nil {
		h.harnessError("%s: start %s again: %v", redisPrimaryKill, addr, err)
		return
	}
	if err := h.scaled.cluster.WaitHealthy(wait, nodes); err != nil {
		h.harnessError("%s: %s did not rejoin: %v", redisPrimaryKill, addr, err)
		return
	}
	if role, err := nodeRole(ctx, addr); err != nil || role != "slave" {
		h.harnessError("%s: %s came back as %q, not as a replica (%v)", redisPrimaryKill, addr, role, err)
		return
	}
	h.count(redisRejoined)
	h.log.Info("redis node back as replica", "node", addr, "after the kill", time.Since(killed).Round(time.Millisecond))
}

// nodeRole is a Redis node's replication role: "master" or "slave".
func nodeRole(ctx context.Context, addr string) (string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = rdb.Close() }()
	info, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "role:"); ok {
			return v, nil
		}
	}
	return "", errors.New("INFO replication has no role")
}
