package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/term"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/redisconn"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/worker"
)

// Progress of `broadcast --wait`: a terminal's bar is redrawn at every
// poll; plain output gets a line at most every plainEvery, when it moved.
const (
	pollEvery  = time.Second
	plainEvery = 5 * time.Second
	barWidth   = 30
)

// broadcasts is the broadcast client on notifications, which keeps
// broadcasts' recipient lists in the Redis at rdb for the workers' dedup
// window (ONCEFLOW_DEDUP_WINDOW) past their send_at.
func (a *app) broadcasts(notifications *starter.Client, rdb redis.UniversalClient, cfg httpapi.Config) *broadcast.Client {
	// Lists are kept at least as long as the default window.
	return broadcast.NewClient(notifications, recipients.New(rdb), max(cfg.DedupWindow, dedup.DefaultWindow))
}

// broadcastClient connects a client that can start and page broadcasts:
// it needs REDIS_URL.
func (a *app) broadcastClient(ctx context.Context, taskQueue string) (*broadcast.Client, func(), error) {
	if a.getenv(redisconn.EnvURL) == "" {
		return nil, nil, inputErrorf("broadcasts keep their recipient lists in Redis: set %s", redisconn.EnvURL)
	}
	opts, err := a.ledger()
	if err != nil {
		return nil, nil, err
	}
	tc, _, err := a.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := a.config()
	if err != nil {
		tc.Close()
		return nil, nil, err
	}
	rdb, err := a.redis()
	if err != nil {
		tc.Close()
		return nil, nil, err
	}
	return a.broadcasts(starter.New(tc, taskQueue, opts...), rdb, cfg), tc.Close, nil
}

func (a *app) broadcast(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("broadcast", flag.ContinueOnError)
	var (
		file      = fs.String("file", "", "read the broadcast JSON from this file (- for standard input)")
		wait      = fs.Bool("wait", false, "follow the broadcast until it ends, showing its progress")
		taskQueue = fs.String("task-queue", a.getenv(worker.EnvTaskQueue), "task queue of the workers ("+worker.EnvTaskQueue+")")
		tenant    = fs.String("tenant", "", "the tenant whose broadcast it is (as in the API token file); empty for the single tenant")
	)
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return inputErrorf("broadcast takes no arguments, got %q", fs.Args())
	}
	if *file == "" {
		return inputErrorf("--file is required: a broadcast's JSON ({\"key\", \"channel\", \"recipients\": [{\"id\", \"to\"}], \"body\"})")
	}
	b, err := readBroadcast(*file)
	if err != nil {
		return err
	}
	if *tenant != "" {
		if b.Tenant != "" && b.Tenant != *tenant {
			return inputErrorf("--tenant %q differs from the file's tenant %q", *tenant, b.Tenant)
		}
		b.Tenant = *tenant
	}
	if err := b.Validate(); err != nil {
		return err
	}
	c, closeClient, err := a.broadcastClient(ctx, *taskQueue)
	if err != nil {
		return err
	}
	defer closeClient()
	c = c.ForTenant(b.Tenant)
	started, err := c.Send(ctx, b)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, started.WorkflowID)
	if !*wait {
		return nil
	}
	show, end := a.progress()
	st, err := c.Wait(ctx, b.Key, pollEvery, show)
	end()
	if err != nil {
		return err
	}
	a.printBroadcast(st)
	if st.Failed+st.Ambiguous+st.Cancelled > 0 || st.Execution != "completed" {
		return errFailedDeliveries
	}
	return nil
}

func readBroadcast(path string) (onceflow.Broadcast, error) {
	return readFile(path, onceflow.DecodeBroadcast)
}

// progress returns what shows a broadcast's progress on stdout: a bar
// redrawn in place on a terminal, else a plain line when the counts have
// moved, at most every plainEvery. end finishes the bar's row, so that
// what follows (an error when the wait is cut short, an interrupt's shell
// prompt) starts on a row of its own.
func (a *app) progress() (show func(broadcast.Status), end func()) {
	if f, ok := a.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		drawn := false
		show = func(st broadcast.Status) {
			// Back to the row's start, the bar, then erase what is left of
			// a longer frame. The width is read at every frame, so that a
			// resized terminal gets a bar that fits.
			fmt.Fprintf(a.stdout, "\r%s\x1b[K", progressBar(st, terminalWidth(f)))
			drawn = true
		}
		end = func() {
			if drawn {
				fmt.Fprintln(a.stdout)
				drawn = false
			}
		}
		return show, end
	}
	var last string
	var at time.Time
	show = func(st broadcast.Status) {
		line := st.Progress()
		if line == last || (time.Since(at) < plainEvery && st.Execution == "running") {
			return
		}
		last, at = line, time.Now()
		fmt.Fprintln(a.stdout, line)
	}
	return show, func() {}
}

// Bars narrower than minBar are left out; defaultWidth is the width of a
// terminal that does not say.
const (
	minBar       = 10
	defaultWidth = 80
)

// terminalWidth is f's width in columns.
func terminalWidth(f *os.File) int {
	if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
		return w
	}
	return defaultWidth
}

// progressBar is one frame of the bar for a terminal of width columns: it
// stays short of the last column, so that it never wraps (a wrapped frame
// leaves a stale row behind at each redraw, and some terminals wrap on
// writing the last column). On a narrow terminal the counts that are zero
// and say nothing (suppressed, cancelled) are left out, then the bar, then
// the end of the line.
func progressBar(st broadcast.Status, width int) string {
	room := width - 1
	text := st.Progress()
	if room-len(text)-3 < minBar {
		text = fmt.Sprintf("%d of %d settled: %d delivered", st.Total-st.Pending, st.Total, st.Delivered)
		if st.Suppressed > 0 {
			text += fmt.Sprintf(", %d suppressed", st.Suppressed)
		}
		text += fmt.Sprintf(", %d failed, %d ambiguous", st.Failed, st.Ambiguous)
		if st.Cancelled > 0 {
			text += fmt.Sprintf(", %d cancelled", st.Cancelled)
		}
	}
	bar := min(barWidth, room-len(text)-3)
	if bar < minBar {
		return text[:max(0, min(len(text), room))]
	}
	filled := 0
	if st.Total > 0 {
		filled = bar * (st.Total - st.Pending) / st.Total
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", bar-filled) + "] " + text
}

// broadcastStatus is `onceflow status --broadcast KEY`.
func (a *app) broadcastStatus(ctx context.Context, tenant, key string, asJSON bool) error {
	all, closeClient, err := a.broadcastClient(ctx, "")
	if err != nil {
		return err
	}
	defer closeClient()
	c := all.ForTenant(tenant)
	st, err := c.Status(ctx, key, broadcast.Page{Limit: broadcast.MaxPage})
	var nf *onceflow.NotFoundError
	if errors.As(err, &nf) {
		return inputError{err}
	}
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(a.stdout, "%s %s\n", st.WorkflowID, st.Execution)
	a.printBroadcast(st)
	return nil
}

// printBroadcast prints a broadcast's counts, then its failed and
// ambiguous recipients (the first page of them).
func (a *app) printBroadcast(st broadcast.Status) {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tTOTAL\tDELIVERED\tSUPPRESSED\tFAILED\tAMBIGUOUS\tCANCELLED\tPENDING")
	fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", st.Status, st.Total, st.Delivered, st.Suppressed, st.Failed, st.Ambiguous, st.Cancelled, st.Pending)
	tw.Flush()
	for _, n := range st.Notes {
		fmt.Fprintln(a.stdout, "note:", n)
	}
	if len(st.Problems) == 0 {
		return
	}
	fmt.Fprintln(a.stdout)
	tw = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPIENT\tSTATUS\tREASON")
	for _, p := range st.Problems {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, p.Status, orDash(p.Reason))
	}
	tw.Flush()
	if st.NextCursor != nil {
		fmt.Fprintf(a.stdout, "(more: GET /v1/broadcasts/%s?cursor=%s)\n", st.Key, *st.NextCursor)
	}
}
