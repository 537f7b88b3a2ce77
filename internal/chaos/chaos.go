//go:build linux

// Package chaos is a fault-injection harness for Onceflow's promise: a
// notification is delivered once in effect whatever fails. It runs a real
// Temporal server, a real redis-server with its append-only file, a real
// HTTP receiver and several `onceflow worker` processes; sends notifications
// (each started several times at once); kills workers, restarts Redis and
// the Temporal server, and makes the receiver misbehave; then checks, from
// the receiver's own log and from Temporal, that nothing was lost, nothing
// took effect twice, and every raw re-send was reported by Onceflow.
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
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/internal/redisproc"
	"github.com/onceflow/onceflow/starter"
)

// Config is one chaos run.
type Config struct {
	// Binary is the onceflow binary that runs the Temporal server and the
	// workers as separate processes.
	Binary string
	// Dir holds the Temporal database, Redis's files and the processes' logs.
	Dir           string
	Notifications int
	// Starts is how many goroutines start each notification at once.
	Starts  int
	Workers int
	// KillEvery is the mean time between SIGKILLs of a random worker.
	KillEvery time.Duration
	// RedisRestarts and TemporalRestarts happen spread over the sending.
	RedisRestarts    int
	TemporalRestarts int
	Receiver         Faults
	// SendRate bounds how many notifications a second are started.
	SendRate float64
	Seed     uint64
	Timeout  time.Duration
	Logger   *slog.Logger
}

// Report is what a run found.
type Report struct {
	Notifications    int
	Workers          int
	Seed             uint64
	Faults           map[string]int
	Accepted         int
	Lost             []string
	DuplicateEffects []string
	RawResends       int
	Unaccounted      []string
	// Reported counts deliveries whose result says an earlier attempt
	// may have sent them; Ambiguous those of them left ambiguous (the
	// others the receiver confirmed as applied once).
	Reported  int
	Ambiguous int
	Failed    []string
	WallTime  time.Duration
}

// OK reports whether every invariant held.
func (r Report) OK() bool {
	return r.Accepted == r.Notifications && len(r.Lost) == 0 && len(r.DuplicateEffects) == 0 && len(r.Unaccounted) == 0 && len(r.Failed) == 0
}

// Write prints the report.
func (r Report) Write(w io.Writer) {
	fmt.Fprintf(w, "chaos report (seed %d)\n", r.Seed)
	fmt.Fprintf(w, "  notifications        %d (accepted %d)\n", r.Notifications, r.Accepted)
	fmt.Fprintf(w, "  workers              %d processes\n", r.Workers)
	var kinds []string
	for k := range r.Faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  fault %-14s %d\n", k, r.Faults[k])
	}
	fmt.Fprintf(w, "  lost                 %d\n", len(r.Lost))
	fmt.Fprintf(w, "  duplicate effects    %d\n", len(r.DuplicateEffects))
	fmt.Fprintf(w, "  raw re-sends         %d (unaccounted %d)\n", r.RawResends, len(r.Unaccounted))
	fmt.Fprintf(w, "  ambiguous reported   %d (%d confirmed once by the receiver, %d left ambiguous)\n", r.Reported, r.Reported-r.Ambiguous, r.Ambiguous)
	fmt.Fprintf(w, "  failed               %d\n", len(r.Failed))
	fmt.Fprintf(w, "  wall time            %v\n", r.WallTime.Round(time.Millisecond))
	for _, list := range []struct {
		name  string
		items []string
	}{{"lost", r.Lost}, {"duplicate effect", r.DuplicateEffects}, {"unaccounted re-send", r.Unaccounted}, {"failed", r.Failed}} {
		for i, item := range list.items {
			if i == 10 {
				fmt.Fprintf(w, "  ... %d more %s\n", len(list.items)-10, list.name)
				break
			}
			fmt.Fprintf(w, "  %s: %s\n", list.name, item)
		}
	}
	if r.OK() {
		fmt.Fprintln(w, "  invariants           hold")
	} else {
		fmt.Fprintln(w, "  invariants           FAILED")
	}
}

const secret = "whsec_Y2hhb3MtaGFybmVzcy1zaWduaW5nLWtleS0zMmI="

// Run runs the harness and returns its report; err is about the harness
// itself (a process that would not start), not about the invariants.
func Run(ctx context.Context, cfg Config) (Report, error) {
	start := time.Now()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rep := Report{Notifications: cfg.Notifications, Workers: cfg.Workers, Seed: cfg.Seed, Faults: map[string]int{}}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed+1))
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	rds, err := redisproc.Start(filepath.Join(cfg.Dir, "redis"), 0)
	if err != nil {
		return rep, err
	}
	defer rds.Stop()

	rcv := newReceiver(cfg.Receiver, cfg.Seed+2)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	hsrv := &http.Server{Handler: rcv}
	go func() { _ = hsrv.Serve(l) }()
	defer hsrv.Close()
	target := "http://" + l.Addr().String() + "/hooks"

	port, err := freeport.Get()
	if err != nil {
		return rep, err
	}
	temporalAddr := "127.0.0.1:" + strconv.Itoa(port)
	tsrv := &process{name: "temporal", log: filepath.Join(cfg.Dir, "temporal.out"), args: []string{cfg.Binary, "dev",
		"--data-dir", filepath.Join(cfg.Dir, "temporal"), "--temporal-port", strconv.Itoa(port),
		"--ui-port", "0", "--api-addr", "", "--workers", "0", "--redis-url", rds.URL()}}
	if err := tsrv.start(nil); err != nil {
		return rep, err
	}
	defer tsrv.stop(syscall.SIGTERM)
	tc, err := dialWhenUp(ctx, temporalAddr)
	if err != nil {
		return rep, err
	}
	defer tc.Close()

	env := []string{
		"TEMPORAL_ADDRESS=" + temporalAddr, "TEMPORAL_NAMESPACE=default", "REDIS_URL=" + rds.URL(),
		"ONCEFLOW_WEBHOOK_SECRET=" + secret, "ONCEFLOW_ATTEMPT_TIMEOUT=3s", "ONCEFLOW_GIVE_UP_AFTER=1h",
	}
	workers := make([]*process, cfg.Workers)
	for i := range workers {
		workers[i] = &process{name: fmt.Sprintf("worker-%d", i+1), log: filepath.Join(cfg.Dir, fmt.Sprintf("worker-%d.out", i+1)), args: []string{cfg.Binary, "worker"}}
		if err := workers[i].start(env); err != nil {
			return rep, err
		}
	}
	defer func() {
		for _, w := range workers {
			w.stop(syscall.SIGTERM)
		}
	}()

	c := starter.New(tc, "")
	var faultsMu sync.Mutex
	count := func(kind string) {
		faultsMu.Lock()
		rep.Faults[kind]++
		faultsMu.Unlock()
	}

	// Faults in the background while notifications are sent and run.
	sending := make(chan struct{})
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		injectFaults(ctx, cfg, rng, sending, workers, rds, tsrv, count, log)
	}()

	accepted := send(ctx, c, cfg, target, log)
	close(sending)
	<-faultsDone
	rep.Accepted = len(accepted)

	results := wait(ctx, c, accepted, log)
	for k, n := range rcv.Injected() {
		rep.Faults[k] = n
	}
	check(&rep, accepted, results, rcv)
	rep.WallTime = time.Since(start)
	return rep, nil
}

func key(i int) string { return fmt.Sprintf("chaos-%06d", i) }

// send starts every notification from cfg.Starts goroutines at once,
// retrying a start that fails while a server restarts; it returns the keys
// whose start succeeded.
func send(ctx context.Context, c *starter.Client, cfg Config, target string, log *slog.Logger) map[string]onceflow.Notification {
	accepted := map[string]onceflow.Notification{}
	var mu sync.Mutex
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.SendRate))
	defer tick.Stop()
	var wg sync.WaitGroup
	for i := range cfg.Notifications {
		select {
		case <-ctx.Done():
			return accepted
		case <-tick.C:
		}
		n := onceflow.Notification{Key: key(i), Subject: "chaos", Body: "notification " + strconv.Itoa(i),
			Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: target}}}
		for range cfg.Starts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if _, err := c.Send(ctx, n); err == nil {
						mu.Lock()
						accepted[n.Key] = n
						mu.Unlock()
						return
					} else {
						log.Debug("start failed; retrying", "key", n.Key, "error", err)
					}
					time.Sleep(200 * time.Millisecond)
				}
			}()
		}
	}
	wg.Wait()
	return accepted
}

// wait collects every accepted notification's result, retrying while
// servers restart.
func wait(ctx context.Context, c *starter.Client, accepted map[string]onceflow.Notification, log *slog.Logger) map[string]onceflow.Result {
	results := map[string]onceflow.Result{}
	var mu sync.Mutex
	keys := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				for ctx.Err() == nil {
					res, err := c.Wait(ctx, k)
					if err == nil {
						mu.Lock()
						results[k] = res
						mu.Unlock()
						break
					}
					log.Debug("wait failed; retrying", "key", k, "error", err)
					time.Sleep(500 * time.Millisecond)
				}
			}
		}()
	}
	for k := range accepted {
		keys <- k
	}
	close(keys)
	wg.Wait()
	return results
}

// check applies the invariants.
func check(rep *Report, accepted map[string]onceflow.Notification, results map[string]onceflow.Result, rcv *faultyReceiver) {
	for k, n := range accepted {
		res, ok := results[k]
		id := n.Deliveries[0].ID(k)
		switch {
		case !ok:
			rep.Lost = append(rep.Lost, k+": never reached a final state")
			continue
		case rcv.AppliedFor(k) == 0:
			rep.Lost = append(rep.Lost, fmt.Sprintf("%s: %s but never applied by the receiver", k, res.Deliveries[0].Status))
		case rcv.AppliedFor(k) > 1:
			rep.DuplicateEffects = append(rep.DuplicateEffects, fmt.Sprintf("%s: applied %d times", k, rcv.AppliedFor(k)))
		}
		d := res.Deliveries[0].LastStep()
		reported := d.Status == onceflow.Ambiguous || strings.Contains(d.Reason, "earlier attempt may have sent it")
		if reported {
			rep.Reported++
		}
		if d.Status == onceflow.Ambiguous {
			rep.Ambiguous++
		}
		if d.Status == onceflow.Failed || d.Status == onceflow.Cancelled {
			rep.Failed = append(rep.Failed, fmt.Sprintf("%s: %s: %s", k, d.Status, d.Reason))
		}
		if r := rcv.Replays(id); r > 0 {
			rep.RawResends += r
			if !reported {
				rep.Unaccounted = append(rep.Unaccounted, fmt.Sprintf("%s: %d re-sends, reported %s (%q)", k, r, d.Status, d.Reason))
			}
		}
	}
	sort.Strings(rep.Lost)
	sort.Strings(rep.DuplicateEffects)
	sort.Strings(rep.Unaccounted)
	sort.Strings(rep.Failed)
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

// process is a child process that can be killed and started again.
type process struct {
	name string
	log  string
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	env  []string
}

func (p *process) start(env []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if env != nil {
		p.env = env
	}
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = cmd
	go func() { _ = cmd.Wait(); out.Close() }()
	return nil
}

func (p *process) stop(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cmd.ProcessState != nil || cmd.Process.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}
