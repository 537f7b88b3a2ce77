package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/worker"
)

func (a *app) worker(ctx context.Context, args []string) error {
	cfg, err := worker.LoadConfig(a.getenv)
	if err != nil {
		return inputError{err}
	}
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.StringVar(&cfg.TaskQueue, "task-queue", cfg.TaskQueue, "task queue to poll ("+worker.EnvTaskQueue+")")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx) // stops the metrics server on return
	defer stop()
	if _, err := a.serveMetrics(ctx); err != nil {
		return err
	}
	tc, namespace, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer tc.Close()
	return worker.Run(ctx, tc, namespace, cfg, a.logger)
}

func (a *app) send(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	var (
		file      = fs.String("file", "", "read the notification JSON from this file (- for standard input)")
		key       = fs.String("key", "", "idempotency key")
		channel   = fs.String("channel", "", "channel: webhook, email, sms, push, chat or inapp")
		to        = fs.String("to", "", "recipient: URL, address, number, token, chat channel or subscriber id")
		subject   = fs.String("subject", "", "subject")
		body      = fs.String("body", "", "body text")
		sendAt    = fs.String("send-at", "", "deliver at this RFC 3339 time instead of now")
		wait      = fs.Bool("wait", false, "wait for the result and print it")
		taskQueue = fs.String("task-queue", a.getenv(worker.EnvTaskQueue), "task queue of the workers ("+worker.EnvTaskQueue+")")
		tenant    = fs.String("tenant", "", tenantUsage)
	)
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return inputErrorf("send takes no arguments, got %q", fs.Args())
	}
	var n onceflow.Notification
	if *file != "" {
		var set []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "file" && f.Name != "wait" && f.Name != "task-queue" && f.Name != "tenant" {
				set = append(set, "--"+f.Name)
			}
		})
		if len(set) > 0 {
			return inputErrorf("--file cannot be combined with %s", strings.Join(set, ", "))
		}
		var err error
		if n, err = readNotification(*file); err != nil {
			return err
		}
	} else {
		n = onceflow.Notification{Key: *key, Subject: *subject, Body: *body}
		if *channel != "" || *to != "" {
			n.Deliveries = []onceflow.Delivery{{Channel: onceflow.Channel(*channel), To: *to}}
		}
		if *sendAt != "" {
			t, err := time.Parse(time.RFC3339, *sendAt)
			if err != nil {
				return inputErrorf("--send-at %q is not an RFC 3339 time such as 2026-12-01T09:00:00Z", *sendAt)
			}
			n.SendAt = &t
		}
	}
	if *tenant != "" {
		if n.Tenant != "" && n.Tenant != *tenant {
			return inputErrorf("--tenant %q differs from the file's tenant %q", *tenant, n.Tenant)
		}
		n.Tenant = *tenant
	}
	if err := n.Validate(); err != nil {
		return err
	}
	opts, err := a.ledger()
	if err != nil {
		return err
	}
	tc, _, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer tc.Close()
	c := starter.New(tc, *taskQueue, opts...).ForTenant(n.Tenant)
	started, err := c.Send(ctx, n)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, started.WorkflowID)
	if !*wait {
		return nil
	}
	res, err := c.WaitRun(ctx, started)
	if err != nil {
		return err
	}
	a.printResult(res)
	for _, d := range res.Deliveries {
		// Skipped is the subscriber's choice, not a failure.
		if s := d.LastStep().Status; s != onceflow.Delivered && s != onceflow.Suppressed && s != onceflow.Skipped {
			return errFailedDeliveries
		}
	}
	return nil
}

func readNotification(path string) (onceflow.Notification, error) {
	return readFile(path, onceflow.DecodeNotification)
}

func (a *app) status(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	broadcast := fs.Bool("broadcast", false, "the key is a broadcast's: print its counts and failed and ambiguous recipients")
	return a.byKey(ctx, fs, args, func(c *starter.Client, key string) error {
		if *broadcast {
			return a.broadcastStatus(ctx, c.Tenant(), key, *asJSON) // broadcast.go
		}
		st, err := c.Status(ctx, key)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		}
		fmt.Fprintf(a.stdout, "%s %s\n", st.WorkflowID, st.Execution)
		a.printResult(st.Result)
		return nil
	})
}

func (a *app) cancel(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cancel", flag.ContinueOnError)
	return a.byKey(ctx, fs, args, func(c *starter.Client, key string) error {
		if err := refuseDigestEvent(ctx, c, key); err != nil { // digest.go
			return err
		}
		if err := c.Cancel(ctx, key); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "cancel requested for %s\n", key)
		return nil
	})
}

// byKey runs a command whose one argument is a notification's key: it
// parses fs, checks the key, connects, and calls do. An unknown key is an
// input error.
func (a *app) byKey(ctx context.Context, fs *flag.FlagSet, args []string, do func(*starter.Client, string) error) error {
	tenant := fs.String("tenant", "", tenantUsage)
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return inputErrorf("%s takes one argument, the notification's key", fs.Name())
	}
	key := fs.Arg(0)
	if err := onceflow.ValidateKey(key); err != nil {
		return err
	}
	if err := onceflow.ValidateTenant(*tenant); err != nil {
		return err
	}
	tc, _, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer tc.Close()
	return lookupError(do(starter.New(tc, "").ForTenant(*tenant), key))
}

// tenantUsage describes --tenant, with which an operator acts on a tenant's
// notifications as the API does for the tenant's token.
const tenantUsage = "the tenant whose notification it is (as in the API token file); empty for the single tenant"

// lookupError makes an unknown key an input error.
func lookupError(err error) error {
	var nf *onceflow.NotFoundError
	if errors.As(err, &nf) {
		return inputError{err}
	}
	return err
}

func (a *app) printResult(res onceflow.Result) {
	a.printDigestRef(res.Digest) // digest.go
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tTO\tSTATUS\tATTEMPTS\tRECEIPT\tREASON")
	for _, d := range res.Deliveries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", d.Channel, d.To, d.Status, d.Attempts, orDash(d.Receipt), orDash(d.Reason))
		for _, fb := range d.Fallbacks {
			fmt.Fprintf(tw, "  then %s\t%s\t%s\t%d\t%s\t%s\n", fb.Channel, fb.To, fb.Status, fb.Attempts, orDash(fb.Receipt), orDash(fb.Reason))
		}
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readFile decodes the --file flag's file, or standard input for "-".
func readFile[T any](path string, decode func(io.Reader) (T, error)) (T, error) {
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			var zero T
			return zero, inputErrorf("--file: %v", err)
		}
		defer func() { _ = f.Close() }()
	}
	return decode(f)
}
