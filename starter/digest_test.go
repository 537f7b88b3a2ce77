package starter_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/digest"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/worker"
	"github.com/onceflow/onceflow/workflows"
)

// digestStack is a worker with a "digest" template that lists its events,
// one "key=n" line each, and a receiver that verifies signatures.
func digestStack(t *testing.T) (*teststack.Stack, *testenv.Receiver) {
	t.Helper()
	s := servers.New(t, digestConfig(t), nil)
	rcv := testenv.NewReceiver(t)
	return s, rcv
}

// digestConfig is the tests' worker configuration with the "digest"
// template.
func digestConfig(t *testing.T) worker.Config {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "digest"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "digest", "subject.tmpl"), []byte(`{{.count}} new for {{.subscriber}} in {{.digest_key}}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "digest", "text.tmpl"), []byte("{{range .events}}{{.key}}={{.data.n}}\n{{end}}"), 0o644))
	cfg := servers.WorkerConfig()
	cfg.TemplatesDir = dir
	return cfg
}

func digestEvent(rcv *testenv.Receiver, key, subscriber, digestKey, window string, n int) onceflow.Notification {
	return onceflow.Notification{
		Key: key, Template: "digest", Data: map[string]any{"n": n}, Subscriber: subscriber,
		Digest:     &onceflow.Digest{Key: digestKey, Window: window},
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL + "/hooks"}},
	}
}

// digestsReceived maps the key of each digest the receiver applied to the
// event lines of its body, failing on a digest applied twice.
func digestsReceived(t *testing.T, rcv *testenv.Receiver) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, e := range rcv.Log() {
		if !e.Applied {
			continue
		}
		require.NotContains(t, out, e.Key, "digest %s applied twice", e.Key)
		out[e.Key] = strings.Split(strings.TrimSuffix(e.Body, "\n"), "\n")
	}
	return out
}

// TestConcurrentTriggersMakeOneDigest starts 50 events for one subscriber
// and digest key from 50 goroutines at once, ten of them twice (a retried
// trigger, same key and payload): the receiver gets exactly one digest
// holding every event exactly once, and each event's status names it.
func TestConcurrentTriggersMakeOneDigest(t *testing.T) {
	s, rcv := digestStack(t)
	ctx := ctxFor(t)
	const events, retried = 50, 10
	// Long enough for 60 starts and their joins on a loaded machine.
	const window = "20s"

	began := time.Now()
	var wg sync.WaitGroup
	runs := make([]starter.Started, events+retried)
	errs := make([]error, events+retried)
	start := make(chan struct{})
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			n := i % events // the last ten repeat the first ten
			runs[i], errs[i] = s.Client.Send(ctx, digestEvent(rcv, fmt.Sprintf("comment-%d", n), "user-42", "comments", window, n))
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "send %d", i)
	}
	t.Logf("%d concurrent sends took %v", len(runs), time.Since(began))
	for i := range retried {
		assert.Equal(t, runs[i].RunID, runs[events+i].RunID, "a retried trigger joins its first run")
	}

	// While the window is open the digest lists its events, as the
	// events' joins reach it.
	require.Eventually(t, func() bool {
		st, err := digest.NewClient(s.TC).Status(ctx, "user-42", "comments")
		return err == nil && len(st.Events) > 0 && st.Closes != nil
	}, 20*time.Second, 100*time.Millisecond, "the digest holds events while its window is open")

	var digestKey string
	for i := range events {
		res, err := s.Client.WaitRun(ctx, runs[i])
		require.NoError(t, err)
		require.NotNil(t, res.Digest, "event %d names its digest", i)
		assert.Equal(t, onceflow.Delivered, res.Status(), "event %d: %+v", i, res.Deliveries)
		assert.Equal(t, events, res.Digest.Events)
		if digestKey == "" {
			digestKey = res.Digest.Notification
		}
		assert.Equal(t, digestKey, res.Digest.Notification, "every event went out in the same digest")
	}

	got := digestsReceived(t, rcv)
	require.Len(t, got, 1, "exactly one digest delivery: %v", got)
	lines := got[digestKey]
	require.Len(t, lines, events, "every event once: %v", lines)
	for n := range events {
		assert.Contains(t, lines, fmt.Sprintf("comment-%d=%d", n, n))
	}
	slices.Sort(lines)
	assert.Len(t, slices.Compact(lines), events, "no event twice")
	assert.Empty(t, rcv.Invalid())

	id := digest.ID("", "user-42", "comments")
	t.Logf("the digest's window run has %d history events for %d events", len(testenv.History(t, s.TC, id, digestRuns(t, s, id)[0]).Events), events)

	// The digest's own notification has the usual status.
	ds, err := s.Client.Status(ctx, digestKey)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, ds.Result.Status())
	// And an event sent again after its digest went out joins its
	// finished run: it is not digested again.
	again, err := s.Client.Send(ctx, digestEvent(rcv, "comment-7", "user-42", "comments", window, 7))
	require.NoError(t, err)
	assert.Equal(t, runs[7].RunID, again.RunID)
}

// TestEventAfterTheWindowStartsANewDigest: once a digest was sent, the
// next event for it goes out in a digest of its own.
func TestEventAfterTheWindowStartsANewDigest(t *testing.T) {
	s, rcv := digestStack(t)
	ctx := ctxFor(t)
	_, first := sendAndWaitEvent(t, s, digestEvent(rcv, "like-1", "user-7", "likes", "1s", 1))
	_, second := sendAndWaitEvent(t, s, digestEvent(rcv, "like-2", "user-7", "likes", "1s", 2))
	require.NotEqual(t, first.Digest.Notification, second.Digest.Notification)

	got := digestsReceived(t, rcv)
	assert.Equal(t, map[string][]string{
		first.Digest.Notification:  {"like-1=1"},
		second.Digest.Notification: {"like-2=2"},
	}, got)

	st, err := s.Client.Status(ctx, first.Digest.Notification)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, st.Result.Status())

	// The first run opened a window on signal-with-start; the second, on
	// the event it waited for after continuing as new.
	runs := digestRuns(t, s, digest.ID("", "user-7", "likes"))
	require.GreaterOrEqual(t, len(runs), 2)
	testenv.RecordHistory(t, s.TC, digest.ID("", "user-7", "likes"), runs[0], "digest/first_window")
	testenv.RecordHistory(t, s.TC, digest.ID("", "user-7", "likes"), runs[1], "digest/window_after_waiting")
	testenv.RecordHistory(t, s.TC, workflows.ID("like-1"), "", "digest_event_delivered")
}

// digestRuns lists the runs of the digest's workflow, first to current,
// following its continue-as-new chain.
func digestRuns(t *testing.T, s *teststack.Stack, id string) []string {
	t.Helper()
	ctx := ctxFor(t)
	desc, err := s.TC.DescribeWorkflowExecution(ctx, id, "")
	require.NoError(t, err)
	runs := []string{desc.GetWorkflowExecutionInfo().GetFirstRunId()}
	for {
		h := testenv.History(t, s.TC, id, runs[len(runs)-1])
		last := h.Events[len(h.Events)-1]
		can := last.GetWorkflowExecutionContinuedAsNewEventAttributes()
		if can == nil {
			return runs
		}
		runs = append(runs, can.GetNewExecutionRunId())
	}
}

// TestDigestsDoNotMix: events of other digest keys, other subscribers or
// other tenants go out in digests of their own.
func TestDigestsDoNotMix(t *testing.T) {
	s, rcv := digestStack(t)
	ctx := ctxFor(t)
	other := s.Client.ForTenant("acme")
	sends := []struct {
		c *starter.Client
		n onceflow.Notification
	}{
		{s.Client, digestEvent(rcv, "mix-a", "user-1", "comments", "3s", 1)},
		{s.Client, digestEvent(rcv, "mix-b", "user-1", "comments", "3s", 2)},
		{s.Client, digestEvent(rcv, "mix-c", "user-1", "likes", "3s", 3)},
		{s.Client, digestEvent(rcv, "mix-d", "user-2", "comments", "3s", 4)},
		{other, digestEvent(rcv, "mix-e", "user-1", "comments", "3s", 5)},
	}
	var wg sync.WaitGroup
	results := make([]onceflow.Result, len(sends))
	for i, snd := range sends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started, err := snd.c.Send(ctx, snd.n)
			if assert.NoError(t, err) {
				results[i], err = snd.c.WaitRun(ctx, started)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	byKey := map[string][]string{}
	for i, res := range results {
		require.NotNil(t, res.Digest, "send %d", i)
		assert.Equal(t, onceflow.Delivered, res.Status())
		byKey[sends[i].n.Key] = []string{res.Digest.Notification}
	}
	assert.Equal(t, byKey["mix-a"], byKey["mix-b"], "same subscriber and digest key: one digest")
	got := digestsReceived(t, rcv)
	require.Len(t, got, 4)
	a := got[byKey["mix-a"][0]]
	slices.Sort(a)
	assert.Equal(t, []string{"mix-a=1", "mix-b=2"}, a)
	assert.Equal(t, []string{"mix-c=3"}, got[byKey["mix-c"][0]])
	assert.Equal(t, []string{"mix-d=4"}, got[byKey["mix-d"][0]])
	assert.Equal(t, []string{"mix-e=5"}, got[byKey["mix-e"][0]])

	// Each tenant sees only its own digest.
	_, err := digest.NewClient(s.TC).ForTenant("acme").Status(ctx, "user-2", "comments")
	var nf *onceflow.NotFoundError
	assert.ErrorAs(t, err, &nf, "tenant acme has no digest for user-2")
}

func sendAndWaitEvent(t *testing.T, s *teststack.Stack, n onceflow.Notification) (starter.Started, onceflow.Result) {
	t.Helper()
	ctx := ctxFor(t)
	started, err := s.Client.Send(ctx, n)
	require.NoError(t, err)
	res, err := s.Client.WaitRun(ctx, started)
	require.NoError(t, err)
	require.NotNil(t, res.Digest)
	require.Equal(t, onceflow.Delivered, res.Status(), "%+v", res.Deliveries)
	return started, res
}

// TestBadDigestStartsNothing: an invalid digest is refused by name and
// neither the event nor a digest starts.
func TestBadDigestStartsNothing(t *testing.T) {
	s, rcv := digestStack(t)
	ctx := ctxFor(t)
	_, err := s.Client.Send(ctx, digestEvent(rcv, "bad-window", "user-9", "comments", "soon", 1))
	var verr *onceflow.ValidationError
	require.ErrorAs(t, err, &verr)
	assert.Equal(t, "digest.window", verr.Field)
	_, err = s.Client.Status(ctx, "bad-window")
	var nf *onceflow.NotFoundError
	assert.ErrorAs(t, err, &nf)
	_, err = digest.NewClient(s.TC).Status(ctx, "user-9", "comments")
	var dnf *onceflow.NotFoundError
	assert.ErrorAs(t, err, &dnf)
	_, err = s.TC.DescribeWorkflowExecution(ctx, digest.ID("", "user-9", "comments"), "")
	assert.Error(t, err)
}

// TestRepeatedJoinIsDroppedAcrossWindows signals an event to its digest
// twice, as a JoinDigest attempt retried after its signal landed does,
// the second time after the digest was sent: the repeat is dropped, in
// the same window and in the next.
func TestRepeatedJoinIsDroppedAcrossWindows(t *testing.T) {
	s, rcv := digestStack(t)
	ctx := ctxFor(t)
	id := digest.ID("", "user-5", "replies")
	start := digest.Start{Subscriber: "user-5", Key: "replies"}
	join := func(key string, n int) {
		t.Helper()
		ev := digest.Signal{Event: onceflow.DigestEvent{Key: key, Data: map[string]any{"n": n}}, Window: "1s", Template: "digest",
			Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL + "/hooks"}}}
		_, err := s.TC.SignalWithStartWorkflow(ctx, id, digest.EventSignal, ev,
			client.StartWorkflowOptions{ID: id, TaskQueue: s.Queue}, digest.WorkflowName, start)
		require.NoError(t, err)
	}
	applied := func() int {
		n := 0
		for _, e := range rcv.Log() {
			if e.Applied {
				n++
			}
		}
		return n
	}
	join("reply-1", 1)
	join("reply-1", 1)
	require.Eventually(t, func() bool { return applied() == 1 }, time.Minute, 50*time.Millisecond)
	// Once sent, the digest continues as new and waits for a next event.
	require.Eventually(t, func() bool {
		st, err := digest.NewClient(s.TC).Status(ctx, "user-5", "replies")
		return err == nil && st.Sending == "" && len(st.Events) == 0
	}, time.Minute, 50*time.Millisecond)
	join("reply-1", 1)
	join("reply-2", 2)
	require.Eventually(t, func() bool { return applied() == 2 }, time.Minute, 50*time.Millisecond)
	var bodies [][]string
	for _, lines := range digestsReceived(t, rcv) {
		bodies = append(bodies, lines)
	}
	assert.ElementsMatch(t, [][]string{{"reply-1=1"}, {"reply-2=2"}}, bodies)
}

// TestFullDigestClosesEarly: a digest takes at most 64 KiB of its events'
// data; the event that does not fit closes the window and opens the next,
// and every event still goes out once.
func TestFullDigestClosesEarly(t *testing.T) {
	s, rcv := digestStack(t)
	ctx := ctxFor(t)
	const events = 5
	results := make([]onceflow.Result, events)
	var wg sync.WaitGroup
	for i := range events {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := digestEvent(rcv, fmt.Sprintf("big-%d", i), "user-8", "uploads", "5s", i)
			n.Data["pad"] = strings.Repeat("x", 16100) // four do not fit in one digest
			started, err := s.Client.Send(ctx, n)
			if assert.NoError(t, err) {
				results[i], err = s.Client.WaitRun(ctx, started)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	var lines []string
	got := digestsReceived(t, rcv)
	assert.GreaterOrEqual(t, len(got), 2, "the fourth event opens a second digest")
	for key, l := range got {
		assert.LessOrEqual(t, len(l), 3, "digest %s", key)
		lines = append(lines, l...)
	}
	slices.Sort(lines)
	assert.Equal(t, []string{"big-0=0", "big-1=1", "big-2=2", "big-3=3", "big-4=4"}, lines)
	for i, res := range results {
		assert.Equal(t, onceflow.Delivered, res.Status(), "event %d: %+v", i, res.Deliveries)
	}
}

// TestCancelDoesNotWithdrawAnEvent: an event joins its digest at once, so
// a cancel request has no effect: the event is sent in its digest and says
// so.
func TestCancelDoesNotWithdrawAnEvent(t *testing.T) {
	s, rcv := digestStack(t)
	ctx := ctxFor(t)
	started, err := s.Client.Send(ctx, digestEvent(rcv, "kept-1", "user-3", "news", "2s", 1))
	require.NoError(t, err)
	require.NoError(t, s.Client.Cancel(ctx, "kept-1"))
	res, err := s.Client.WaitRun(ctx, started)
	require.NoError(t, err, "the event completes, not cancelled")
	assert.Equal(t, onceflow.Delivered, res.Status())
	assert.Equal(t, map[string][]string{res.Digest.Notification: {"kept-1=1"}}, digestsReceived(t, rcv))
}

// TestDigestSurvivesItsWorker stops the only worker while a digest's
// window is open and starts another: the new worker takes the digest over
// and sends it once, with every event.
func TestDigestSurvivesItsWorker(t *testing.T) {
	cfg := digestConfig(t)
	tc := servers.Temporal.GetDefaultClient()
	queue := "q-" + t.Name()
	startWorker := func() sdkworker.Worker {
		acts, rdb, err := worker.Activities(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = rdb.Close() })
		w := worker.New(tc, queue, teststack.Policy, acts)
		require.NoError(t, w.Start())
		return w
	}
	rcv := testenv.NewReceiver(t)
	c := starter.New(tc, queue)
	ctx := ctxFor(t)

	first := startWorker()
	var runs []starter.Started
	for i := range 3 {
		started, err := c.Send(ctx, digestEvent(rcv, fmt.Sprintf("survive-%d", i), "user-6", "alerts", "6s", i))
		require.NoError(t, err)
		runs = append(runs, started)
	}
	require.Eventually(t, func() bool {
		st, err := digest.NewClient(tc).Status(ctx, "user-6", "alerts")
		return err == nil && len(st.Events) == 3
	}, 30*time.Second, 50*time.Millisecond, "the events join while the first worker runs")
	first.Stop()

	second := startWorker()
	t.Cleanup(second.Stop)
	started, err := c.Send(ctx, digestEvent(rcv, "survive-3", "user-6", "alerts", "6s", 3))
	require.NoError(t, err)
	runs = append(runs, started)
	for _, r := range runs {
		res, err := c.WaitRun(ctx, r)
		require.NoError(t, err)
		assert.Equal(t, onceflow.Delivered, res.Status())
	}
	// survive-3 is in the same digest unless the worker change took longer
	// than the window; either way every event goes out once.
	var all []string
	for _, lines := range digestsReceived(t, rcv) {
		if slices.Contains(lines, "survive-0=0") {
			assert.Subset(t, lines, []string{"survive-0=0", "survive-1=1", "survive-2=2"}, "the window the first worker held")
		}
		all = append(all, lines...)
	}
	slices.Sort(all)
	assert.Equal(t, []string{"survive-0=0", "survive-1=1", "survive-2=2", "survive-3=3"}, all)
}

// refusingSignaler fails every signal-with-start as invalid, which
// retrying cannot help.
type refusingSignaler struct{}

func (refusingSignaler) SignalWithStartWorkflow(context.Context, string, string, any, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, serviceerror.NewInvalidArgument("the frontend refused the signal-with-start")
}

// TestEventThatCannotJoinSaysSo: an event whose digest cannot be reached
// ends ambiguous (an earlier attempt may have joined it), with the reason,
// and nothing is sent.
func TestEventThatCannotJoinSaysSo(t *testing.T) {
	acts, rdb, err := worker.Activities(digestConfig(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	tc := servers.Temporal.GetDefaultClient()
	queue := "q-" + t.Name()
	// The notification's workflow and activities, and a JoinDigest whose
	// signal-with-start is refused.
	w := sdkworker.New(tc, queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(workflows.New(teststack.Policy).Run, workflow.RegisterOptions{Name: workflows.Name})
	w.RegisterActivity(acts.Deliveries)
	w.RegisterActivity(digest.NewActivities(refusingSignaler{}))
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	rcv := testenv.NewReceiver(t)
	c := starter.New(tc, queue)
	ctx := ctxFor(t)

	started, err := c.Send(ctx, digestEvent(rcv, "lost-1", "user-4", "alerts", "1s", 1))
	require.NoError(t, err)
	res, err := c.WaitRun(ctx, started)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Ambiguous, res.Status())
	assert.Contains(t, res.Deliveries[0].Reason, "could not confirm that it joined its digest")
	assert.Contains(t, res.Deliveries[0].Reason, "the frontend refused")
	assert.Empty(t, rcv.Log())
}
