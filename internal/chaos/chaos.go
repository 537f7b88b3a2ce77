//go:build linux

// Package chaos is a fault-injection harness for Onceflow's promise: a
// notification is delivered once in effect whatever fails. It runs a real
// Temporal server, a real redis-server with its append-only file, local
// servers standing in for every channel's far end (a webhook receiver, an
// SMTP relay, and servers speaking the Twilio, FCM and Slack APIs) and
// several `onceflow worker` processes; sends notifications over every
// channel (each started several times at once); kills workers, kills and
// restarts Redis and the Temporal server, and makes the far ends misbehave;
// then checks, from the far ends' own records and from Temporal, that
// nothing was lost, nothing took effect twice without being reported, and
// every ambiguous outcome has a cause the harness can show.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/internal/redisproc"
	"github.com/onceflow/onceflow/providers/webhook"
	"github.com/onceflow/onceflow/starter"
)

// Channels the harness sends over. "webhook-raw" is the webhook channel to
// a receiver that applies every request and never deduplicates.
var Channels = []string{"webhook", "webhook-raw", "email", "sms", "push", "chat"}

// Config is one chaos run.
type Config struct {
	// Binary is the onceflow binary that runs the Temporal server and the
	// workers as separate processes.
	Binary string
	// Dir holds the Temporal database, Redis's files and the processes' logs.
	Dir           string
	Notifications int
	// Channels are those notifications go to, in turn as the seed draws
	// them (one delivery each); empty means all of Channels.
	Channels []string
	// Starts is how many goroutines start each notification at once.
	Starts  int
	Workers int
	// KillEvery is the mean time between SIGKILLs of a random worker; they
	// go on until every workflow has closed.
	KillEvery time.Duration
	// RedisRestarts, RedisKills (SIGKILL), TemporalRestarts and
	// TemporalKills happen spread over the sending.
	RedisRestarts    int
	RedisKills       int
	TemporalRestarts int
	TemporalKills    int
	Receiver         Faults
	// Broadcasts of BroadcastRecipients webhook recipients each are
	// started during the sending, in chunks of BroadcastChunk (0:
	// DefaultBroadcastChunk); see broadcast.go.
	Broadcasts          int
	BroadcastRecipients int
	BroadcastChunk      int
	// SendRate bounds how many notifications a second are started.
	SendRate float64
	Seed     uint64
	Timeout  time.Duration
	Logger   *slog.Logger
	// Scaled runs the scaled-out topology instead of one Redis and
	// Temporal on SQLite (see scaled.go).
	Scaled Scaled
}

const secret = "whsec_Y2hhb3MtaGFybmVzcy1zaWduaW5nLWtleS0zMmI="

// target is one notification's delivery and how its far end knows it.
type target struct {
	channel string
	// ident is how the far end's ledger names it: the delivery ID for a
	// webhook, the address, number, device token or chat channel else.
	ident      string
	deliveryID string
	n          onceflow.Notification
}

// harness is one run's servers and what it has learned.
type harness struct {
	cfg     Config
	log     *slog.Logger
	rep     *Report
	tc      client.Client
	rdb     redis.UniversalClient
	rds     *process
	tsrv    *process
	workers []*process
	// leases finds the live leases a worker holds, for its kills.
	leases leaseFinder
	bc     *broadcastRun
	// redisURL is the workers' REDIS_URL: the single server's, or the
	// cluster's when the topology is scaled.
	redisURL string
	scaled   *scaledStack

	mu sync.Mutex
	// open are the accepted notifications not yet closed: key -> delivery ID.
	open map[string]string
	// interrupted are the keys whose live lease a worker kill interrupted.
	interrupted map[string]bool
	// failedOver are the keys open while the Redis primary holding their
	// records was killed (scaled topology).
	failedOver map[string]bool
}

func (h *harness) count(kind string) {
	h.mu.Lock()
	h.rep.Faults[kind]++
	h.mu.Unlock()
}

func (h *harness) harnessError(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.log.Error(msg)
	h.mu.Lock()
	h.rep.HarnessErrors = append(h.rep.HarnessErrors, msg)
	h.mu.Unlock()
}

func (h *harness) openDeliveries() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]string, len(h.open))
	for k, id := range h.open {
		out[k] = id
	}
	return out
}

// Run runs the harness and returns its report; err is about the harness
// itself (a process that would not start), not about the invariants.
func Run(ctx context.Context, cfg Config) (rep Report, err error) {
	start := time.Now()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(cfg.Channels) == 0 {
		cfg.Channels = Channels
	}
	rep = Report{Notifications: cfg.Notifications, Workers: cfg.Workers, Seed: cfg.Seed, Faults: map[string]int{}, Timeout: cfg.Timeout}
	defer func() { rep.WallTime = time.Since(start) }()
	h := &harness{cfg: cfg, log: log, rep: &rep, open: map[string]string{}, interrupted: map[string]bool{}, failedOver: map[string]bool{}}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed+1))
	runCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := cfg.Scaled.check(cfg); err != nil {
		return rep, err
	}

	startRedis := h.startRedis
	if cfg.Scaled.On {
		startRedis = h.startScaledStores
	}
	stopRedis, err := startRedis()
	if err != nil {
		return rep, err
	}
	defer stopRedis()
	if err := h.redisUp(runCtx); err != nil {
		return rep, err
	}

	// The far ends.
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		return rep, err
	}
	p := plan{seed: cfg.Seed + 2, faults: cfg.Receiver, first: map[string]string{}}
	// Filled in once the receiver's URL is known, before anything is sent.
	byKey := map[string]target{}
	expect := func(channel string) func(string, string) (string, bool) {
		return func(k, _ string) (string, bool) {
			t, ok := byKey[k]
			return t.deliveryID, ok && t.channel == channel
		}
	}
	hooks := newWebhookFake("webhook", true, key, p, expect("webhook"))
	raw := newWebhookFake("webhook-raw", false, key, p, expect("webhook-raw"))
	mux := http.NewServeMux()
	mux.Handle("/hooks", hooks)
	mux.Handle("/raw", raw)
	h.bc = newBroadcastRun(cfg, key, p)
	h.bc.mount(mux)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	hsrv := &http.Server{Handler: mux}
	go func() { _ = hsrv.Serve(l) }()
	defer func() { _ = hsrv.Close() }()
	hookURL := "http://" + l.Addr().String()

	targets := makeTargets(cfg, rng, hookURL)
	h.bc.makeBroadcasts(hookURL)
	byIdent := map[string]map[string]target{}
	idents := map[string][]string{}
	for _, t := range targets {
		byKey[t.n.Key] = t
		if byIdent[t.channel] == nil {
			byIdent[t.channel] = map[string]target{}
		}
		byIdent[t.channel][t.ident] = t
		idents[t.channel] = append(idents[t.channel], t.ident)
	}
	for ch, ids := range idents {
		p.owe(ch, ids)
	}
	relay, err := startSMTP(p, cfg.Receiver.SlowBy, func(rcpt string) (string, bool) {
		t, ok := byIdent["email"][rcpt]
		return t.deliveryID, ok
	})
	if err != nil {
		return rep, err
	}
	defer relay.close()
	apis := &apiServers{
		expectSMS: func(to string) (string, bool) {
			t, ok := byIdent["sms"][to]
			return t.n.Body, ok
		},
		expectChat: func(ch string) (string, bool) {
			t, ok := byIdent["chat"][ch]
			return "*" + t.n.Subject + "*\n" + t.n.Body, ok
		},
		chatDeliveryID: func(ch string) string { return byIdent["chat"][ch].deliveryID },
		expectPush: func(tok string) (string, bool) {
			t, ok := byIdent["push"][tok]
			return t.deliveryID, ok
		},
	}
	if err := startAPIs(p, cfg.Receiver.SlowBy, apis); err != nil {
		return rep, err
	}
	defer func() { _ = apis.srv.Close() }()
	credentials := filepath.Join(cfg.Dir, "fcm-service-account.json")
	if err := os.WriteFile(credentials, apis.credentials, 0o600); err != nil {
		return rep, err
	}

	// Temporal.
	port, err := freeport.Get()
	if err != nil {
		return rep, err
	}
	temporalAddr := "127.0.0.1:" + strconv.Itoa(port)
	h.tsrv = &process{name: "temporal", log: filepath.Join(cfg.Dir, "temporal.out"), args: []string{cfg.Binary, "dev",
		"--data-dir", filepath.Join(cfg.Dir, "temporal"), "--temporal-port", strconv.Itoa(port),
		"--ui-port", "0", "--api-addr", "", "--workers", "0", "--redis-url", h.redisURL}}
	h.tsrv.args = append(h.tsrv.args, h.temporalDB()...)
	if err := h.tsrv.start(nil); err != nil {
		return rep, err
	}
	defer func() { _, _ = h.tsrv.stop(syscall.SIGTERM) }()
	if h.tc, err = dialWhenUp(runCtx, temporalAddr); err != nil {
		return rep, err
	}
	defer h.tc.Close()
	h.leases = harnessLeases{probe: &leaseProbe{rdb: h.rdb, tc: h.tc, open: h.openDeliveries}, bc: h.bc}

	env := []string{
		"TEMPORAL_ADDRESS=" + temporalAddr, "TEMPORAL_NAMESPACE=default", "REDIS_URL=" + h.redisURL,
		"ONCEFLOW_WEBHOOK_SECRET=" + secret, "ONCEFLOW_ATTEMPT_TIMEOUT=3s", "ONCEFLOW_GIVE_UP_AFTER=1h",
		// The receivers are on loopback, which workers refuse unless allowed.
		"ONCEFLOW_EGRESS_ALLOW=127.0.0.0/8",
		"ONCEFLOW_SMTP_ADDR=" + relay.addr(), "ONCEFLOW_SMTP_FROM=notify@chaos.example", "ONCEFLOW_SMTP_TLS=none",
		"ONCEFLOW_TWILIO_ACCOUNT_SID=" + twilioSID, "ONCEFLOW_TWILIO_AUTH_TOKEN=" + twilioToken,
		"ONCEFLOW_TWILIO_FROM=" + twilioFrom, "ONCEFLOW_TWILIO_BASE_URL=" + apis.url,
		"ONCEFLOW_FCM_CREDENTIALS_FILE=" + credentials, "ONCEFLOW_FCM_ENDPOINT=" + apis.url,
		"ONCEFLOW_SLACK_BOT_TOKEN=" + slackToken, "ONCEFLOW_SLACK_API_URL=" + apis.url + "/api",
	}
	env = append(env, cfg.Scaled.env()...)
	h.workers = make([]*process, cfg.Workers)
	for i := range h.workers {
		h.workers[i] = &process{name: fmt.Sprintf("worker-%d", i+1), log: filepath.Join(cfg.Dir, fmt.Sprintf("worker-%d.out", i+1)), args: []string{cfg.Binary, "worker"}}
		if err := h.workers[i].start(env); err != nil {
			return rep, err
		}
	}
	defer func() {
		for _, w := range h.workers {
			_, _ = w.stop(syscall.SIGTERM)
		}
	}()

	// Send and wait at once; faults until every workflow has closed.
	var c notifier = starter.New(h.tc, "")
	if cfg.Scaled.On {
		apiSender, stopAPIs, err := h.startAPIProcesses(runCtx, env)
		if err != nil {
			return rep, err
		}
		defer stopAPIs()
		c = apiSender
	}
	sending, closed := make(chan struct{}), make(chan struct{})
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		h.injectFaults(runCtx, rng, sending, closed)
	}()
	broadcasts := h.bc.start(runCtx, h)
	results := h.sendAndWait(runCtx, c, targets, sending)
	<-broadcasts
	close(closed)
	<-faultsDone
	if runCtx.Err() != nil && ctx.Err() == nil {
		rep.TimedOut = true
	}

	// Read the far ends once no attempt can still send: workers stopped,
	// every lease run out.
	for _, w := range h.workers {
		_, _ = w.stop(syscall.SIGTERM)
	}
	all := map[string]string{}
	for _, t := range targets {
		all[t.n.Key] = t.deliveryID
	}
	h.awaitLeases(ctx, all)
	h.bc.awaitLeases(ctx, h)

	ledgers := map[string]func() (map[string]sighting, map[string]int, []string){
		"webhook": hooks.snapshot, "webhook-raw": raw.snapshot, "email": relay.ledger.snapshot,
		"sms": apis.sms.ledger.snapshot, "push": apis.push.ledger.snapshot, "chat": apis.chat.ledger.snapshot,
	}
	seen := map[string]map[string]sighting{}
	for ch, snap := range ledgers {
		s, faults, invalid := snap()
		seen[ch] = s
		for k, n := range faults {
			rep.Faults[faultName(ch, k)] += n
		}
		rep.Invalid = append(rep.Invalid, invalid...)
		rep.channel(ch).Faults = faults
	}
	rep.Accepted = len(results.accepted)
	h.mu.Lock()
	interrupted, failedOver := h.interrupted, h.failedOver
	h.mu.Unlock()
	check(&rep, targets, results, seen, interrupted, failedOver)
	h.bc.check(&rep, interrupted)
	return rep, nil
}

// startRedis starts the single redis-server.
func (h *harness) startRedis() (stop func(), err error) {
	cfg := h.cfg
	// Redis, as its own process so that it can be SIGKILLed and its death
	// confirmed: with its append-only file fsynced every second, a kill
	// may lose up to the last second of writes.
	if !redisproc.Available() {
		return nil, errors.New("redis-server is not on the PATH (apt-get install -y redis-server)")
	}
	redisPort, err := freeport.Get()
	if err != nil {
		return nil, err
	}
	redisDir := filepath.Join(cfg.Dir, "redis")
	if err := os.MkdirAll(redisDir, 0o700); err != nil {
		return nil, err
	}
	redisAddr := "127.0.0.1:" + strconv.Itoa(redisPort)
	h.rds = &process{name: "redis-server", log: filepath.Join(cfg.Dir, "redis.out"), args: []string{"redis-server",
		"--bind", "127.0.0.1", "--port", strconv.Itoa(redisPort), "--dir", redisDir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec"}}
	if err := h.rds.start(nil); err != nil {
		return nil, err
	}
	h.rdb = redis.NewClient(&redis.Options{Addr: redisAddr, MaxRetries: -1})
	h.redisURL = "redis://" + redisAddr + "/0"
	return func() {
		_ = h.rdb.Close()
		_, _ = h.rds.stop(syscall.SIGTERM)
	}, nil
}

// faultName is a far-end fault's name in the report's totals.
func faultName(channel, kind string) string {
	if channel == "email" {
		return "smtp " + kind
	}
	return "receiver " + kind
}

// makeTargets draws each notification's channel from the seed and gives it
// a recipient of its own.
func makeTargets(cfg Config, rng *rand.Rand, hookURL string) []target {
	targets := make([]target, cfg.Notifications)
	for i := range targets {
		k := fmt.Sprintf("chaos-%06d", i)
		ch := cfg.Channels[rng.IntN(len(cfg.Channels))]
		n := onceflow.Notification{Key: k, Subject: "chaos", Body: "chaos notification " + k}
		var d onceflow.Delivery
		switch ch {
		case "webhook":
			d = onceflow.Delivery{Channel: onceflow.Webhook, To: hookURL + "/hooks"}
		case "webhook-raw":
			d = onceflow.Delivery{Channel: onceflow.Webhook, To: hookURL + "/raw"}
		case "email":
			d = onceflow.Delivery{Channel: onceflow.Email, To: k + "@mail.chaos.example"}
		case "sms":
			d = onceflow.Delivery{Channel: onceflow.SMS, To: fmt.Sprintf("+1555%07d", i)}
		case "push":
			d = onceflow.Delivery{Channel: onceflow.Push, To: "device-" + k}
		case "chat":
			d = onceflow.Delivery{Channel: onceflow.Chat, To: fmt.Sprintf("C%08d", i)}
		}
		n.Deliveries = []onceflow.Delivery{d}
		id := d.ID(k)
		ident := d.To
		if d.Channel == onceflow.Webhook {
			ident = id
		}
		targets[i] = target{channel: ch, ident: ident, deliveryID: id, n: n}
	}
	return targets
}

// outcome is what sending and waiting gave.
type outcome struct {
	accepted map[string]bool
	results  map[string]onceflow.Result
}

// sendAndWait starts every notification from cfg.Starts goroutines at
// once, retrying a start that fails while a server restarts, and waits for
// each accepted one to close; it closes sending once every start is done.
func (h *harness) sendAndWait(ctx context.Context, c notifier, targets []target, sending chan<- struct{}) outcome {
	out := outcome{accepted: map[string]bool{}, results: map[string]onceflow.Result{}}
	var mu sync.Mutex
	keys := make(chan target, len(targets))
	var waiters sync.WaitGroup
	for range 32 {
		waiters.Add(1)
		go func() {
			defer waiters.Done()
			for t := range keys {
				for ctx.Err() == nil {
					res, err := c.Wait(ctx, t.n.Key)
					if err == nil {
						mu.Lock()
						out.results[t.n.Key] = res
						mu.Unlock()
						h.mu.Lock()
						delete(h.open, t.n.Key)
						h.mu.Unlock()
						break
					}
					h.log.Debug("wait failed; retrying", "key", t.n.Key, "error", err)
					sleep(ctx, 500*time.Millisecond)
				}
			}
		}()
	}

	tick := time.NewTicker(time.Duration(float64(time.Second) / h.cfg.SendRate))
	var starts sync.WaitGroup
	// At most this many notifications are being started at once: while a
	// server restarts, starts fail and are retried, and unbounded they
	// pile up by the thousand and starve the harness itself.
	starting := make(chan struct{}, 64)
	for _, t := range targets {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		select {
		case <-ctx.Done():
		case starting <- struct{}{}:
		}
		if ctx.Err() != nil {
			break
		}
		var once sync.Once
		var mine sync.WaitGroup
		mine.Add(h.cfg.Starts)
		go func() { mine.Wait(); <-starting }()
		for range h.cfg.Starts {
			starts.Add(1)
			go func() {
				defer starts.Done()
				defer mine.Done()
				for ctx.Err() == nil {
					_, err := c.Send(ctx, t.n)
					if err == nil {
						once.Do(func() {
							mu.Lock()
							out.accepted[t.n.Key] = true
							mu.Unlock()
							h.mu.Lock()
							h.open[t.n.Key] = t.deliveryID
							h.mu.Unlock()
							keys <- t
						})
						return
					}
					h.log.Debug("start failed; retrying", "key", t.n.Key, "error", err)
					sleep(ctx, 200*time.Millisecond)
				}
			}()
		}
	}
	tick.Stop()
	starts.Wait()
	close(sending)
	close(keys)
	waiters.Wait()
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// awaitLeases waits until no dedup lease of the run is live, so that no
// attempt can still be sending when the far ends are read.
func (h *harness) awaitLeases(ctx context.Context, deliveries map[string]string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		n, err := liveLeases(ctx, h.rdb, deliveries)
		if err == nil && n == 0 {
			return
		}
		if ctx.Err() != nil {
			h.harnessError("leases still live when the far ends were read: %d (%v)", n, err)
			return
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

func dialWhenUp(ctx context.Context, addr string) (client.Client, error) {
	var last error
	for ctx.Err() == nil {
		tc, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: "default", Logger: quietLogger()})
		if err == nil {
			return tc, nil
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return nil, fmt.Errorf("temporal at %s never came up: %w", addr, errors.Join(last, ctx.Err()))
}
