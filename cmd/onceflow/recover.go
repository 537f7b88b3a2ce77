package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/worker"
)

// recoverFailed is `onceflow recover`: it re-sends the deliveries that failed for good since --since
// (starter.Client.Recover) and prints what it re-sent and what it skipped.
func (a *app) recoverFailed(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("recover", flag.ContinueOnError)
	since := fs.String("since", "", "re-send deliveries of notifications that closed since then: an RFC 3339 time (2026-11-26T09:00:00Z) or a duration ago (2h)")
	channel := fs.String("channel", "", "only deliveries on this channel")
	status := fs.String("status", string(onceflow.Failed), "status of the deliveries to re-send; only failed (ambiguous deliveries are never re-sent)")
	tenant := fs.String("tenant", "", "the tenant whose notifications to recover (as in the API token file); empty for the single tenant")
	taskQueue := fs.String("task-queue", a.getenv(worker.EnvTaskQueue), "task queue of the workers ("+worker.EnvTaskQueue+")")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return inputErrorf("recover takes no arguments; got %q", fs.Arg(0))
	}
	at, err := parseSince(*since, time.Now())
	if err != nil {
		return err
	}
	opts := starter.RecoverOptions{Since: at, Channel: onceflow.Channel(*channel), Status: onceflow.Status(*status)}
	if err := opts.Validate(); err != nil {
		return flagError(err)
	}
	if err := onceflow.ValidateTenant(*tenant); err != nil {
		return err
	}
	tc, _, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer tc.Close()
	report, err := starter.New(tc, *taskQueue).ForTenant(*tenant).Recover(ctx, opts)
	if err != nil {
		return flagError(err)
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tCHANNEL\tDELIVERY\tOUTCOME\tDETAIL")
	for _, r := range report.Resent {
		fmt.Fprintf(tw, "%s\t%s\t%s\tre-sent\tas %s\n", r.Key, r.Channel, r.DeliveryID, r.NewKey)
	}
	for _, s := range report.Skipped {
		fmt.Fprintf(tw, "%s\t%s\t%s\tskipped\t%s\n", s.Key, s.Channel, s.DeliveryID, s.Reason)
	}
	tw.Flush()
	fmt.Fprintf(a.stdout, "%d re-sent, %d skipped\n", len(report.Resent), len(report.Skipped))
	return nil
}

// parseSince reads --since: an RFC 3339 time, or a duration before now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, inputErrorf("--since is required: an RFC 3339 time such as 2026-11-26T09:00:00Z, or a duration ago such as 2h")
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, inputErrorf("--since %q is neither an RFC 3339 time such as 2026-11-26T09:00:00Z nor a positive duration such as 2h", v)
}

// flagError names the flag of an option Recover refused.
func flagError(err error) error {
	var ve *onceflow.ValidationError
	if errors.As(err, &ve) {
		return inputErrorf("--%s %s", ve.Field, ve.Reason)
	}
	return err
}
