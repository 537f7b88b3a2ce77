package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/digest"
	"github.com/onceflow/onceflow/starter"
)

// digest prints a subscriber's digest: its open window and the keys of
// the events in it.
//
//	onceflow digest SUBSCRIBER KEY [--json] [--tenant T]
func (a *app) digest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("digest", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the digest's state as JSON")
	tenant := fs.String("tenant", "", "the tenant whose subscriber it is (as in the API token file); empty for the single tenant")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return inputErrorf("digest takes two arguments, the subscriber id and the digest key")
	}
	subscriber, key := fs.Arg(0), fs.Arg(1)
	if err := onceflow.ValidateSubscriber(subscriber); err != nil {
		return err
	}
	if err := onceflow.ValidateDigestKey(key); err != nil {
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
	st, err := digest.NewClient(tc).ForTenant(*tenant).Status(ctx, subscriber, key)
	var nf *onceflow.NotFoundError
	switch {
	case errors.As(err, &nf):
		return inputError{err}
	case err != nil:
		return err
	case *asJSON:
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(a.stdout, "digest %s of subscriber %s\n", st.Key, st.Subscriber)
	switch {
	case st.Sending != "":
		fmt.Fprintf(a.stdout, "sending as notification %s\n", st.Sending)
	case st.Opened != nil:
		fmt.Fprintf(a.stdout, "window of %s open since %s, closes %s\n", st.Window, st.Opened.UTC().Format("2006-01-02T15:04:05Z"), st.Closes.UTC().Format("2006-01-02T15:04:05Z"))
	default:
		fmt.Fprintln(a.stdout, "no window open: the next event opens one")
	}
	fmt.Fprintf(a.stdout, "events (%d): %s\n", len(st.Events), orDash(strings.Join(st.Events, " ")))
	if len(st.Next) > 0 {
		fmt.Fprintf(a.stdout, "next window (%d): %s\n", len(st.Next), strings.Join(st.Next, " "))
	}
	return nil
}

// printDigestRef says where a notification that joined a digest went.
func (a *app) printDigestRef(d *onceflow.DigestRef) {
	if d == nil {
		return
	}
	if d.Notification == "" {
		fmt.Fprintf(a.stdout, "waiting in digest %s of subscriber %s (onceflow digest %s %s)\n", d.Key, d.Subscriber, d.Subscriber, d.Key)
		return
	}
	fmt.Fprintf(a.stdout, "sent in digest %s of subscriber %s as notification %s, with %d events (onceflow status %s)\n",
		d.Key, d.Subscriber, d.Notification, d.Events, d.Notification)
}

// refuseDigestEvent refuses to cancel a notification that has joined a
// digest: its digest sends it whatever a cancel says.
func refuseDigestEvent(ctx context.Context, c *starter.Client, key string) error {
	st, err := c.Status(ctx, key)
	if err != nil {
		return err
	}
	if d := st.Result.Digest; d != nil {
		return inputErrorf("notification %q has joined digest %q of subscriber %s, which sends it; an event cannot be withdrawn from its digest", key, d.Key, d.Subscriber)
	}
	return nil
}
