package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/redisconn"
)

// preferenceService is the preference service on the Redis at rdb, with
// the critical categories and unsubscribe links of cfg
// (ONCEFLOW_CRITICAL_CATEGORIES, ONCEFLOW_UNSUBSCRIBE_SECRET,
// ONCEFLOW_PUBLIC_URL): what the API serves and the preferences command
// uses.
func (a *app) preferenceService(rdb redis.UniversalClient, cfg httpapi.Config) *preferences.Service {
	return preferences.NewService(preferences.New(rdb, cfg.Preferences.Critical), cfg.Preferences.Links())
}

const preferencesUsage = `usage:
  onceflow preferences get  --subscriber ID [--tenant T] [--json]
  onceflow preferences set  --subscriber ID [--tenant T] --opt-out CATEGORY/CHANNEL [--opt-out ...]
  onceflow preferences set  --subscriber ID [--tenant T] --file preferences.json
  onceflow preferences set  --subscriber ID [--tenant T] --clear
  onceflow preferences link --subscriber ID [--tenant T] --category C --channel CH [--expires-in 1440h]
CATEGORY and CHANNEL may be "*" (any). Needs REDIS_URL.`

// optOutFlags collects repeated --opt-out CATEGORY/CHANNEL flags.
type optOutFlags []preferences.OptOut

func (o *optOutFlags) String() string { return fmt.Sprint(*o) }

func (o *optOutFlags) Set(v string) error {
	category, channel, ok := strings.Cut(v, "/")
	if !ok {
		return fmt.Errorf("%q is not CATEGORY/CHANNEL, such as marketing/email or */sms", v)
	}
	*o = append(*o, preferences.OptOut{Category: category, Channel: channel})
	return nil
}

func (a *app) preferences(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "get" && args[0] != "set" && args[0] != "link") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(a.stdout, preferencesUsage)
			return nil
		}
		return inputErrorf("preferences needs get, set or link\n%s", preferencesUsage)
	}
	verb := args[0]
	fs := flag.NewFlagSet("preferences "+verb, flag.ContinueOnError)
	sub := fs.String("subscriber", "", "the subscriber's id (required)")
	tenant := fs.String("tenant", "", "the tenant whose subscriber it is (as in the API token file); empty for the single tenant")
	asJSON := fs.Bool("json", false, "get: print the preferences as JSON")
	var optOuts optOutFlags
	fs.Var(&optOuts, "opt-out", "set: opt out of CATEGORY/CHANNEL (repeatable; '*' for any)")
	file := fs.String("file", "", `set: read {"opt_outs": [...]} from this file (- for standard input)`)
	clear := fs.Bool("clear", false, "set: remove every opt-out")
	category := fs.String("category", "", "link: the category the link opts out of ('*' for every one but the critical)")
	channel := fs.String("channel", "", "link: the channel the link opts out of ('*' for every one)")
	expiresIn := fs.Duration("expires-in", preferences.DefaultLinkTTL, "link: how long the link works")
	if err := a.parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return inputErrorf("preferences %s takes no arguments, got %q", verb, fs.Args())
	}
	if *sub == "" {
		return inputErrorf("--subscriber is required")
	}
	if a.getenv(redisconn.EnvURL) == "" {
		return inputErrorf("subscriber preferences are kept in Redis: set %s", redisconn.EnvURL)
	}
	// Preferences live in Redis only: no Temporal connection is needed.
	cfg, err := a.config()
	if err != nil {
		return err
	}
	rdb, err := a.redis()
	if err != nil {
		return err
	}
	c := a.preferenceService(rdb, cfg).ForTenant(*tenant)
	switch verb {
	case "get":
		p, err := c.Get(ctx, *sub)
		if err != nil {
			return err
		}
		return a.printPreferences(p, *asJSON)
	case "set":
		forms := 0
		for _, set := range []bool{len(optOuts) > 0, *file != "", *clear} {
			if set {
				forms++
			}
		}
		if forms != 1 {
			return inputErrorf("preferences set takes one of --opt-out (repeatable), --file or --clear")
		}
		p := preferences.Preferences{OptOuts: optOuts}
		if *file != "" {
			if p, err = readPreferences(*file); err != nil {
				return err
			}
		}
		stored, err := c.Set(ctx, *sub, p)
		if err != nil {
			return err
		}
		return a.printPreferences(stored, false)
	}
	link, err := c.NewUnsubscribeLink(*sub, *category, *channel, *expiresIn)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s\nexpires %s\n", link.URL, link.ExpiresAt.Format(time.RFC3339))
	return nil
}

func readPreferences(path string) (preferences.Preferences, error) {
	return readFile(path, preferences.Decode)
}

func (a *app) printPreferences(p preferences.Preferences, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	if len(p.OptOuts) == 0 {
		fmt.Fprintln(a.stdout, "no opt-outs: every category is sent on every channel")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPTED OUT OF\tON CHANNEL")
	for _, o := range p.OptOuts {
		fmt.Fprintf(tw, "%s\t%s\n", o.Category, o.Channel)
	}
	return tw.Flush()
}
