//go:build linux

package chaos

// Broadcasts under fire. Alongside the single notifications the harness
// starts a few broadcasts of webhook recipients to receivers of their own
// (one that deduplicates by Idempotency-Key, one that applies every
// request), under the same worker kills, Redis and Temporal restarts and
// far-end faults. A recipient's delivery ID is derived from the broadcast's
// key and the recipient's id (onceflow.RecipientDeliveryID), so the
// receivers count one delivery per recipient; once every workflow has
// closed, each recipient's effects are checked against what the
// broadcast's status reports: its counts, and the failed and ambiguous
// recipients it names (paged from Redis). A recipient must have taken
// effect exactly once, or be named ambiguous.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/starter"
)

// The broadcasts' receivers, as the report names them: the same
// receivers as "webhook" and "webhook-raw", on paths of their own.
const (
	bcastHooks = "broadcast"
	bcastRaw   = "broadcast-raw"
)

// DefaultBroadcastChunk is the chunk size of the harness's broadcasts
// unless Config.BroadcastChunk says otherwise: small, so that a broadcast
// of a few hundred recipients has several chunks, some of which a worker
// kill interrupts mid-chunk.
const DefaultBroadcastChunk = 50

// broadcastParallel is how many chunks of a broadcast run at once.
const broadcastParallel = 4

// bcastTarget is one broadcast and where its recipients' webhooks go.
type bcastTarget struct {
	b onceflow.Broadcast
	// ids are the recipients' delivery IDs, raw whether each goes to the
	// receiver that never deduplicates; both by recipient index.
	ids []string
	raw []bool
}

// bcastOutcome is what starting and following one broadcast gave.
type bcastOutcome struct {
	accepted bool
	// closed: the workflow closed and its status and every problem were
	// read.
	closed   bool
	status   broadcast.Status
	problems map[string]recipients.Problem
}

// broadcastRun is one run's broadcasts: their receivers, what was sent and
// what Onceflow reported.
type broadcastRun struct {
	cfg        Config
	hooks, raw *webhookFake
	casts      []bcastTarget
	// byID maps a delivery ID to its broadcast's key.
	byID map[string]string

	mu       sync.Mutex
	open     map[int]bool
	outcomes []bcastOutcome
}

func newBroadcastRun(cfg Config, key []byte, p plan) *broadcastRun {
	b := &broadcastRun{cfg: cfg, byID: map[string]string{}, open: map[int]bool{}}
	// A broadcast's webhook carries the broadcast's key and a delivery ID
	// of one of its recipients.
	expect := func(k, id string) (string, bool) {
		return id, b.byID[id] == k && k != ""
	}
	b.hooks = newWebhookFake(bcastHooks, true, key, p, expect)
	b.raw = newWebhookFake(bcastRaw, false, key, p, expect)
	return b
}

// mount serves the broadcasts' receivers on mux.
func (b *broadcastRun) mount(mux *http.ServeMux) {
	mux.Handle("/bcast/hooks", b.hooks)
	mux.Handle("/bcast/raw", b.raw)
}

// makeBroadcasts builds cfg.Broadcasts broadcasts of
// cfg.BroadcastRecipients webhook recipients each, every recipient sent to
// one of the two receivers as a generator of its own, seeded by the run's
// seed, draws (so that the notifications' draws are those of a run
// without broadcasts).
func (b *broadcastRun) makeBroadcasts(hookURL string) {
	rng := rand.New(rand.NewPCG(b.cfg.Seed+3, b.cfg.Seed+4))
	b.casts = make([]bcastTarget, b.cfg.Broadcasts)
	b.outcomes = make([]bcastOutcome, b.cfg.Broadcasts)
	for i := range b.casts {
		key := fmt.Sprintf("chaos-broadcast-%03d", i)
		t := bcastTarget{b: onceflow.Broadcast{Key: key, Channel: onceflow.Webhook, Subject: "chaos", Body: "chaos broadcast " + key}}
		for j := range b.cfg.BroadcastRecipients {
			id := fmt.Sprintf("member-%05d", j)
			raw := rng.IntN(2) == 0
			to := hookURL + "/bcast/hooks"
			if raw {
				to = hookURL + "/bcast/raw"
			}
			t.b.Recipients = append(t.b.Recipients, onceflow.Recipient{ID: id, To: to})
			did := onceflow.RecipientDeliveryID(key, id)
			t.ids = append(t.ids, did)
			t.raw = append(t.raw, raw)
			b.byID[did] = key
		}
		b.casts[i] = t
	}
}

// start starts the broadcasts, spread evenly over the notifications'
// sending, each from cfg.Starts goroutines at once; follows each until its
// workflow has closed; and closes the returned channel when all have.
func (b *broadcastRun) start(ctx context.Context, h *harness) <-chan struct{} {
	done := make(chan struct{})
	if len(b.casts) == 0 {
		close(done)
		return done
	}
	chunk := b.cfg.BroadcastChunk
	if chunk <= 0 {
		chunk = DefaultBroadcastChunk
	}
	c := broadcast.NewClient(starter.New(h.tc, ""), recipients.New(h.rdb), dedup.DefaultWindow).WithChunks(chunk, broadcastParallel)
	sendFor := time.Duration(float64(b.cfg.Notifications) / b.cfg.SendRate * float64(time.Second))
	begin := time.Now()
	var wg sync.WaitGroup
	for i := range b.casts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sleep(ctx, time.Until(begin.Add(sendFor*time.Duration(i+1)/time.Duration(len(b.casts)+1))))
			b.follow(ctx, h, c, i)
		}()
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

// follow starts broadcast i, retrying a start that fails while a server
// restarts, then polls its status until its workflow has closed and reads
// every failed and ambiguous recipient it names.
func (b *broadcastRun) follow(ctx context.Context, h *harness, c *broadcast.Client, i int) {
	t := b.casts[i]
	var once sync.Once
	var starts sync.WaitGroup
	for range max(1, b.cfg.Starts) {
		starts.Add(1)
		go func() {
			defer starts.Done()
			for ctx.Err() == nil {
				_, err := c.Send(ctx, t.b)
				if err == nil {
					once.Do(func() {
						b.mu.Lock()
						b.outcomes[i].accepted = true
						b.open[i] = true
						b.mu.Unlock()
					})
					return
				}
				h.log.Debug("broadcast start failed; retrying", "key", t.b.Key, "error", err)
				sleep(ctx, 200*time.Millisecond)
			}
		}()
	}
	starts.Wait()
	b.mu.Lock()
	accepted := b.outcomes[i].accepted
	b.mu.Unlock()
	if !accepted {
		return
	}
	for ctx.Err() == nil {
		st, problems, err := readBroadcast(ctx, c, t.b.Key)
		if err == nil && st.Execution != "running" {
			b.mu.Lock()
			b.outcomes[i].closed, b.outcomes[i].status, b.outcomes[i].problems = true, st, problems
			delete(b.open, i)
			b.mu.Unlock()
			h.log.Info("broadcast closed", "key", t.b.Key, "progress", st.Progress())
			return
		}
		if err != nil {
			h.log.Debug("broadcast status failed; retrying", "key", t.b.Key, "error", err)
		}
		sleep(ctx, time.Second)
	}
}

// readBroadcast reads a broadcast's status and, once it has closed, every
// problem it names, page by page.
func readBroadcast(ctx context.Context, c *broadcast.Client, key string) (broadcast.Status, map[string]recipients.Problem, error) {
	st, err := c.Status(ctx, key, broadcast.Page{Limit: broadcast.MaxPage})
	if err != nil || st.Execution == "running" {
		return st, nil, err
	}
	problems := map[string]recipients.Problem{}
	page := st
	for {
		for _, p := range page.Problems {
			problems[p.ID] = p
		}
		if page.NextCursor == nil {
			return st, problems, nil
		}
		if page, err = c.Status(ctx, key, broadcast.Page{Cursor: *page.NextCursor, Limit: broadcast.MaxPage}); err != nil {
			return st, nil, err
		}
	}
}

// records lists the dedup records of the given broadcasts' recipients:
// delivery ID, record key, and the broadcast's index.
func (b *broadcastRun) records(which func(int) bool) (ids, keys []string, cast []int) {
	for i, t := range b.casts {
		if !which(i) {
			continue
		}
		ledger := onceflow.BroadcastLedgerKey(onceflow.ScopedKey(t.b.Tenant, t.b.Key))
		for _, id := range t.ids {
			ids = append(ids, id)
			keys = append(keys, recordKey(ledger, id))
			cast = append(cast, i)
		}
	}
	return ids, keys, cast
}

// held returns the live leases of open broadcasts' recipients whose
// chunk's current attempt the worker with process ID pid started, as
// leaseProbe.held does for notifications: a chunk's attempt holds the
// leases of the recipients it is sending, all under its fencing token
// (workflow ID/run ID/chunk activity ID/attempt). A lease's key is the
// recipient's delivery ID.
func (b *broadcastRun) held(ctx context.Context, p *leaseProbe, pid int) ([]lease, error) {
	b.mu.Lock()
	open := make(map[int]bool, len(b.open))
	for i := range b.open {
		open[i] = true
	}
	b.mu.Unlock()
	if len(open) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ids, keys, cast := b.records(func(i int) bool { return open[i] })
	states, now, err := p.read(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read broadcast leases: %w", err)
	}
	live := map[int]bool{}
	for j, s := range states {
		if s.state == "l" && s.until > now {
			live[cast[j]] = true
		}
	}
	// The fences of the chunk attempts the doomed worker started, per
	// broadcast.
	fences := map[int]map[string]bool{}
	identity := fmt.Sprintf("%d@", pid)
	for i := range live {
		wfID := broadcast.WorkflowID(onceflow.ScopedKey(b.casts[i].b.Tenant, b.casts[i].b.Key))
		d, err := p.tc.DescribeWorkflowExecution(ctx, wfID, "")
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", wfID, err)
		}
		run := d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
		fences[i] = map[string]bool{}
		for _, a := range d.GetPendingActivities() {
			if strings.HasPrefix(a.GetLastWorkerIdentity(), identity) {
				fences[i][fence(fmt.Sprintf("%s/%s/%s/%d", wfID, run, a.GetActivityId(), a.GetAttempt()))] = true
			}
		}
	}
	var held []lease
	for j, s := range states {
		if s.state == "l" && s.until > now && fences[cast[j]][s.fence] {
			held = append(held, lease{key: ids[j], record: keys[j], fence: s.fence})
		}
	}
	return held, nil
}

// awaitLeases waits until no lease of a broadcast's recipient is live, so
// that no chunk's attempt can still be sending when the receivers are
// read.
func (b *broadcastRun) awaitLeases(ctx context.Context, h *harness) {
	if len(b.casts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	_, keys, _ := b.records(func(int) bool { return true })
	p := &leaseProbe{rdb: h.rdb}
	for {
		states, now, err := p.read(ctx, keys)
		n := 0
		for _, s := range states {
			if s.state == "l" && s.until > now {
				n++
			}
		}
		if err == nil && n == 0 {
			return
		}
		if ctx.Err() != nil {
			h.harnessError("broadcast leases still live when the receivers were read: %d (%v)", n, err)
			return
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

// BroadcastReport is the broadcasts' part of a Report, counted apart from
// the notifications.
type BroadcastReport struct {
	Broadcasts int
	Accepted   int
	// Recipients counts the recipients of every broadcast.
	Recipients int
	// Delivered, Suppressed, Ambiguous and Failed sum the broadcasts'
	// final counts, as their status reports them.
	Delivered  int
	Suppressed int
	Ambiguous  int
	Failed     int
	// Lost: a recipient reported settled (not failed, not ambiguous) that
	// the receiver never took, or a broadcast that never closed.
	Lost []string
	// DuplicateEffects counts recipients that took effect more than once;
	// SilentDuplicates lists those of them not named ambiguous.
	DuplicateEffects int
	SilentDuplicates []string
	// Resends counts copies the receivers took in beyond a recipient's
	// first; Confirmed those re-sends to the deduplicating receiver that
	// its log shows answered as repeats; Unaccounted the re-sends there
	// neither named ambiguous nor confirmed.
	Resends     int
	Confirmed   int
	Unaccounted []string
	// Justified counts ambiguous recipients by evidence, as
	// Report.Justified does; Unjustified lists those with none, at most
	// UnjustifiedBound (2 + 0.2 % of the recipients).
	Justified        map[string]int
	Unjustified      []string
	UnjustifiedBound int
	// LeasesInterrupted counts recipients whose live lease a worker kill
	// interrupted (part of Report.LeasesInterrupted).
	LeasesInterrupted int
	// Inconsistent lists broadcasts whose status contradicts itself: counts
	// that do not add up, or failed and ambiguous counts that differ from
	// the recipients it names.
	Inconsistent []string
	FailedList   []string
	Invalid      []string
	Receivers    map[string]*ChannelReport
}

func (r *BroadcastReport) receiver(name string) *ChannelReport {
	if r.Receivers == nil {
		r.Receivers = map[string]*ChannelReport{}
	}
	c := r.Receivers[name]
	if c == nil {
		c = &ChannelReport{Faults: map[string]int{}}
		r.Receivers[name] = c
	}
	return c
}

// ok reports whether every invariant held for the broadcasts.
func (r BroadcastReport) ok() bool {
	return r.Accepted == r.Broadcasts && len(r.Lost) == 0 && len(r.SilentDuplicates) == 0 && len(r.Unaccounted) == 0 &&
		len(r.Inconsistent) == 0 && len(r.FailedList) == 0 && len(r.Invalid) == 0 && len(r.Unjustified) <= r.UnjustifiedBound
}

// check applies the invariants to every broadcast's recipients: what the
// receivers took against what the broadcast's status names.
func (b *broadcastRun) check(rep *Report, interrupted map[string]bool) {
	r := &rep.Broadcasts
	r.Broadcasts = len(b.casts)
	if r.Broadcasts == 0 {
		return
	}
	r.Justified = map[string]int{}
	seen := map[string]map[string]sighting{}
	for name, f := range map[string]*webhookFake{bcastHooks: b.hooks, bcastRaw: b.raw} {
		s, faults, invalid := f.snapshot()
		seen[name] = s
		r.receiver(name).Faults = faults
		r.Invalid = append(r.Invalid, invalid...)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, t := range b.casts {
		out := b.outcomes[i]
		r.Recipients += len(t.b.Recipients)
		if !out.accepted {
			continue
		}
		r.Accepted++
		if !out.closed {
			r.Lost = append(r.Lost, fmt.Sprintf("%s: never reached a final state (%d recipients)", t.b.Key, len(t.b.Recipients)))
			continue
		}
		st := out.status
		r.Delivered += st.Delivered
		r.Suppressed += st.Suppressed
		r.Ambiguous += st.Ambiguous
		r.Failed += st.Failed
		b.consistent(r, t, out)
		for j, rc := range t.b.Recipients {
			b.checkRecipient(r, t, j, out.problems[rc.ID], seen, interrupted)
		}
	}
	r.UnjustifiedBound = unjustifiedBound(r.Recipients)
	for _, l := range [][]string{r.Lost, r.SilentDuplicates, r.Unaccounted, r.Unjustified, r.Inconsistent, r.FailedList, r.Invalid} {
		sort.Strings(l)
	}
}

// consistent checks that a closed broadcast's status adds up: it
// completed, nothing is pending, its counts sum to its total, and it names
// as many failed and ambiguous recipients as it counts.
func (b *broadcastRun) consistent(r *BroadcastReport, t bcastTarget, out bcastOutcome) {
	st := out.status
	named := map[onceflow.Status]int{}
	for _, p := range out.problems {
		named[p.Status]++
	}
	var wrong []string
	if st.Execution != "completed" {
		wrong = append(wrong, "its workflow ended "+st.Execution)
	}
	if st.Total != len(t.b.Recipients) || st.Pending != 0 || st.Delivered+st.Suppressed+st.Failed+st.Ambiguous+st.Cancelled != st.Total {
		wrong = append(wrong, "its counts do not add up: "+st.Progress()+fmt.Sprintf(", %d pending, of %d recipients", st.Pending, len(t.b.Recipients)))
	}
	if named[onceflow.Ambiguous] != st.Ambiguous || named[onceflow.Failed] != st.Failed {
		wrong = append(wrong, fmt.Sprintf("it counts %d ambiguous and %d failed but names %d and %d", st.Ambiguous, st.Failed, named[onceflow.Ambiguous], named[onceflow.Failed]))
	}
	for _, n := range st.Notes {
		wrong = append(wrong, "note: "+n)
	}
	if len(wrong) > 0 {
		r.Inconsistent = append(r.Inconsistent, t.b.Key+": "+strings.Join(wrong, "; "))
	}
}

// checkRecipient checks recipient j of t: taken once, or named ambiguous.
func (b *broadcastRun) checkRecipient(r *BroadcastReport, t bcastTarget, j int, p recipients.Problem, seen map[string]map[string]sighting, interrupted map[string]bool) {
	recv := bcastHooks
	if t.raw[j] {
		recv = bcastRaw
	}
	id := t.ids[j]
	ch := r.receiver(recv)
	ch.Notifications++
	s := seen[recv][id]
	if s.Copies > 1 {
		ch.Resends += s.Copies - 1
		r.Resends += s.Copies - 1
	}
	if interrupted[id] {
		r.LeasesInterrupted++
	}
	what := fmt.Sprintf("%s/%s (%s)", t.b.Key, t.b.Recipients[j].ID, recv)
	ambiguous := p.Status == onceflow.Ambiguous
	switch p.Status {
	case "":
		ch.Delivered++
		if s.Effects == 0 {
			ch.Lost++
			r.Lost = append(r.Lost, what+": reported settled but the receiver never took it")
		}
	case onceflow.Ambiguous:
		ch.Ambiguous++
		// The scaled topology marks notifications open on a killed primary,
		// not broadcast recipients.
		if !justify(r.Justified, s, interrupted[id], false) {
			r.Unjustified = append(r.Unjustified, fmt.Sprintf("%s: received %d, effects %d, no fault, no kill on its lease: %s", what, s.Requests, s.Effects, p.Reason))
		}
	default:
		r.FailedList = append(r.FailedList, fmt.Sprintf("%s: %s: %s", what, p.Status, p.Reason))
	}
	if s.Effects > 1 {
		r.DuplicateEffects++
		if ambiguous {
			ch.ReportedDuplicates++
		} else {
			ch.SilentDuplicates++
			r.SilentDuplicates = append(r.SilentDuplicates, fmt.Sprintf("%s: took effect %d times, not named ambiguous; faults: %s", what, s.Effects, faultList(s.Faults)))
		}
	}
	// The deduplicating receiver's repeats: named ambiguous, or answered
	// as repeats, as its own log shows.
	if recv == bcastHooks && !ambiguous && s.Copies > 1 {
		if s.Confirmed {
			r.Confirmed++
		} else {
			r.Unaccounted = append(r.Unaccounted, fmt.Sprintf("%s: %d re-sends, not named ambiguous, and the receiver never answered one as a repeat", what, s.Copies-1))
		}
	}
}

// write prints the broadcasts' part of the report.
func (r BroadcastReport) write(w io.Writer) {
	if r.Broadcasts == 0 {
		return
	}
	fmt.Fprintf(w, "  broadcasts           %d of %d recipients each, %d recipients (accepted %d broadcasts)\n",
		r.Broadcasts, r.Recipients/max(1, r.Broadcasts), r.Recipients, r.Accepted)
	fmt.Fprintf(w, "    status counts      %d delivered, %d suppressed, %d ambiguous, %d failed\n", r.Delivered, r.Suppressed, r.Ambiguous, r.Failed)
	fmt.Fprintf(w, "    lost               %d\n", len(r.Lost))
	fmt.Fprintf(w, "    duplicate effects  %d (silent %d, named ambiguous %d)\n", r.DuplicateEffects, len(r.SilentDuplicates), r.DuplicateEffects-len(r.SilentDuplicates))
	fmt.Fprintf(w, "    raw re-sends       %d (%d confirmed once by the receiver, unaccounted %d)\n", r.Resends, r.Confirmed, len(r.Unaccounted))
	fmt.Fprintf(w, "    kills on leases    %d recipients' live leases interrupted by a worker kill\n", r.LeasesInterrupted)
	var ev []string
	for _, k := range []string{evidenceRepeat, evidenceFault, evidenceKill} {
		ev = append(ev, fmt.Sprintf("%s %d", k, r.Justified[k]))
	}
	fmt.Fprintf(w, "    ambiguity evidence %s\n", strings.Join(ev, ", "))
	fmt.Fprintf(w, "    ambiguous unjustified %d (bound %d)\n", len(r.Unjustified), r.UnjustifiedBound)
	fmt.Fprintf(w, "    inconsistent status %d\n", len(r.Inconsistent))
	fmt.Fprintf(w, "    invalid requests   %d\n", len(r.Invalid))
	fmt.Fprintf(w, "    failed             %d\n", len(r.FailedList))
	fmt.Fprintf(w, "    %-13s %6s %9s %9s %5s %10s %12s %8s  %s\n", "receiver", "recip", "delivered", "ambiguous", "lost", "silent-dup", "reported-dup", "re-sends", "faults injected")
	for _, name := range []string{bcastHooks, bcastRaw} {
		if c, ok := r.Receivers[name]; ok {
			fmt.Fprintf(w, "    %-13s %6d %9d %9d %5d %10d %12d %8d  %s\n", name, c.Notifications, c.Delivered, c.Ambiguous, c.Lost,
				c.SilentDuplicates, c.ReportedDuplicates, c.Resends, faultList(c.Faults))
		}
	}
	for _, list := range []struct {
		name  string
		items []string
	}{{"broadcast lost", r.Lost}, {"broadcast silent duplicate", r.SilentDuplicates}, {"broadcast unaccounted re-send", r.Unaccounted},
		{"broadcast unjustified ambiguity", r.Unjustified}, {"broadcast inconsistent", r.Inconsistent},
		{"broadcast invalid request", r.Invalid}, {"broadcast failed", r.FailedList}} {
		for i, item := range list.items {
			if i == 10 {
				fmt.Fprintf(w, "    ... %d more %s\n", len(list.items)-10, list.name)
				break
			}
			fmt.Fprintf(w, "    %s: %s\n", list.name, item)
		}
	}
}
