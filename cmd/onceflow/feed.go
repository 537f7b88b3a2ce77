package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/redisconn"
	"github.com/onceflow/onceflow/revocation"
)

// feedStore is the feeds in the Redis at REDIS_URL, with the item
// lifetime the workers use (ONCEFLOW_FEED_TTL).
func (a *app) feedStore() (*feed.Store, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	if !cfg.Redis.Configured() {
		return nil, inputErrorf("the in-app feed is kept in Redis: set %s", redisconn.EnvURL)
	}
	rdb, err := a.redis()
	if err != nil {
		return nil, err
	}
	return feed.New(rdb, cfg.FeedTTL, 0, feed.WaitReplicas(cfg.Redis.WaitReplicas, 0)), nil
}

// feedAPI is the API's feed option: the feeds in REDIS_URL's Redis,
// subscriber tokens when their secret is set, and the browser origins
// allowed. Without REDIS_URL the feed routes answer 503.
func (a *app) feedAPI() ([]httpapi.Option, error) {
	cfg, err := a.config()
	if err != nil || !cfg.Redis.Configured() {
		return nil, err
	}
	store, err := a.feedStore()
	if err != nil {
		return nil, err
	}
	secrets := 0
	if cfg.Signer != nil {
		secrets = cfg.Signer.Keys()
	}
	a.logger.Info("In-app feed routes enabled", "subscriber_tokens", cfg.Signer != nil, "subscriber_token_secrets", secrets, "origins", cfg.FeedOrigins)
	return []httpapi.Option{httpapi.WithFeed(feed.NewService(store), cfg.Signer, cfg.FeedOrigins)}, nil
}

// feed prints a page of a subscriber's in-app feed, or marks items read.
func (a *app) feed(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("feed", flag.ContinueOnError)
	var (
		subscriber = fs.String("subscriber", "", "subscriber id (required)")
		tenant     = fs.String("tenant", "", tenantUsage)
		cursor     = fs.String("cursor", "", "print the items older than this cursor (a page's next cursor)")
		limit      = fs.Int("limit", feed.DefaultLimit, fmt.Sprintf("items per page, 1 to %d", feed.MaxLimit))
		asJSON     = fs.Bool("json", false, "print the page as JSON")
		read       = fs.String("read", "", "mark this item read instead of printing")
		readAll    = fs.Bool("read-all", false, "mark every item read instead of printing")
	)
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return inputErrorf("feed takes no arguments, got %q", fs.Args())
	}
	if err := onceflow.ValidateSubscriber(*subscriber); err != nil {
		return inputErrorf("--subscriber: %v", err)
	}
	if *limit < 1 || *limit > feed.MaxLimit {
		return inputErrorf("--limit %d is not from 1 to %d", *limit, feed.MaxLimit)
	}
	store, err := a.feedStore()
	if err != nil {
		return err
	}
	c := feed.NewService(store).ForTenant(*tenant)
	switch {
	case *read != "":
		if err := c.MarkRead(ctx, *subscriber, *read); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s marked read\n", *read)
		return nil
	case *readAll:
		n, err := c.MarkAllRead(ctx, *subscriber)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%d marked read\n", n)
		return nil
	}
	page, err := c.Page(ctx, *subscriber, *cursor, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(page)
	}
	fmt.Fprintf(a.stdout, "%d unread\n", page.Unread)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tSTATE\tID\tKEY\tSUBJECT\tBODY")
	for _, it := range page.Items {
		state := "unread"
		if it.Read {
			state = "read"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.Created.Format(time.RFC3339), state, it.ID, it.Key, oneLine(it.Subject), oneLine(it.Body))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.NextCursor != nil {
		fmt.Fprintf(a.stdout, "more: --cursor %s\n", *page.NextCursor)
	}
	return nil
}

// oneLine shortens text to one line of at most 60 characters for a table.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 60 {
		return string(r[:59]) + "…"
	}
	return s
}

// subscriberToken prints a subscriber token signed with
// ONCEFLOW_SUBSCRIBER_TOKEN_SECRET, as POST /v1/subscribers/{id}/tokens
// mints one.
func (a *app) subscriberToken(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("subscriber-token", flag.ContinueOnError)
	var (
		subscriber = fs.String("subscriber", "", "subscriber id (required)")
		tenant     = fs.String("tenant", "", tenantUsage)
		ttl        = fs.Duration("ttl", feed.DefaultTokenTTL, fmt.Sprintf("lifetime, at most %v", feed.MaxTokenTTL))
	)
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return inputErrorf("subscriber-token takes no arguments, got %q", fs.Args())
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	signer := cfg.Signer
	if signer == nil {
		return inputErrorf("set %s (or %s%s) to the secret the API verifies subscriber tokens with", feed.EnvTokenSecret, feed.EnvTokenSecret, FileSuffix)
	}
	tok, exp, err := signer.Mint(*tenant, *subscriber, *ttl, time.Now())
	if err != nil {
		return inputError{err}
	}
	fmt.Fprintf(a.stderr, "# subscriber %s, valid until %s\n", *subscriber, exp.UTC().Format(time.RFC3339))
	fmt.Fprintln(a.stdout, tok)
	return nil
}

// revoke refuses every subscriber token and unsubscribe link issued to a
// subscriber until now, as POST /v1/subscribers/{id}/revoke does.
func (a *app) revoke(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	var (
		subscriber = fs.String("subscriber", "", "subscriber id (required)")
		tenant     = fs.String("tenant", "", "the tenant whose subscriber it is (as in the API token file); empty for the single tenant")
	)
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return inputErrorf("revoke takes no arguments, got %q", fs.Args())
	}
	if err := onceflow.ValidateSubscriber(*subscriber); err != nil {
		return inputErrorf("--subscriber: %v", err)
	}
	if err := onceflow.ValidateTenant(*tenant); err != nil {
		return inputErrorf("--tenant: %v", err)
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if !cfg.Redis.Configured() {
		return inputErrorf("revocations are kept in Redis: set %s", redisconn.EnvURL)
	}
	rdb, err := a.redis()
	if err != nil {
		return err
	}
	nb, err := revocation.New(rdb).Revoke(ctx, *tenant, *subscriber, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "subscriber %s: subscriber tokens and unsubscribe links issued until %s are refused\n", *subscriber, nb.Format(time.RFC3339Nano))
	return nil
}
