package worker

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/internal/envvar"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/providers/chat"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/providers/email"
	"github.com/onceflow/onceflow/providers/push"
	"github.com/onceflow/onceflow/providers/sms"
	"github.com/onceflow/onceflow/providers/webhook"
	"github.com/onceflow/onceflow/ratelimit"
	"github.com/onceflow/onceflow/redisconn"
	"github.com/onceflow/onceflow/templates"
	"github.com/onceflow/onceflow/workflows"
)

// Config is what a worker needs besides its Temporal client.
type Config struct {
	TaskQueue string
	// Config is how the worker reaches Redis (REDIS_URL, the TLS files,
	// ONCEFLOW_REDIS_WAIT_REPLICAS), the DefaultURL when REDIS_URL is
	// unset.
	redisconn.Config
	WebhookSecret string
	// TemplatesDir holds the notification templates; empty means none.
	TemplatesDir string
	// Rates caps channels' sends per second across all workers.
	Rates map[onceflow.Channel]float64
	// The other channels' providers; none leaves a channel off, and its
	// deliveries fail with a reason that says so. Several SMTP relays or
	// Twilio accounts are tried in order (providers.Chain).
	Email []email.Config
	SMS   []sms.Config
	Chat  *chat.Config
	Push  *push.Config
	// EgressAllow lists the networks that destinations callers supply
	// (webhook and chat URLs) may reach although the egress guard refuses
	// them (loopback, private, link-local, ...); none by default.
	EgressAllow []netip.Prefix
	// DedupWindow is how long dedup records are kept; it must outlive the
	// namespace's retention so that a key re-sent after its workflow was
	// deleted is still suppressed.
	DedupWindow time.Duration
	Policy      workflows.Policy
	// Preferences are the critical categories and the unsubscribe links'
	// secret and public URL (preferences.ConfigFromEnv).
	Preferences preferences.Config
	// EventsURL is where operational events are POSTed (events.EnvURL);
	// empty sends none. EndpointFailingAfter is how long a webhook
	// destination fails before endpoint.failing.
	EventsURL            string
	EndpointFailingAfter time.Duration
	// FeedTTL is how long in-app feed items are kept (feed.EnvTTL).
	FeedTTL time.Duration
	// WorkflowCache is how many workflows the worker process keeps in
	// memory between tasks; 0 keeps the SDK's default (10,000). Onceflow's
	// default is DefaultWorkflowCache.
	WorkflowCache int
}

// Environment variables read by LoadConfig besides redisconn's and the
// providers', products' and events' own; their defaults and meaning are
// in the table of internal/envvar, which LoadConfig reads them through.
const (
	EnvTaskQueue      = "ONCEFLOW_TASK_QUEUE"
	EnvDedupWindow    = "ONCEFLOW_DEDUP_WINDOW"
	EnvAttemptTimeout = "ONCEFLOW_ATTEMPT_TIMEOUT"
	EnvGiveUpAfter    = "ONCEFLOW_GIVE_UP_AFTER"
	EnvRateLimits     = "ONCEFLOW_RATE_LIMITS"
	EnvWorkflowCache  = "ONCEFLOW_WORKFLOW_CACHE"
)

// DefaultWorkflowCache is the worker's workflow cache. The SDK keeps
// 10,000 by default; a notification waiting on send_at then costs its
// worker about 33 KB and slowed immediate notifications by a fifth
// (docs/benchmarks.md). With 1,000, one waiting costs about 4 KB and
// immediate throughput is unchanged; a workflow evicted from the cache is
// replayed from its short history when its timer fires.
const DefaultWorkflowCache = 1000

// LoadConfig reads the worker's configuration from the environment through
// getenv (os.Getenv in production). An unparsable value is an error that
// names its variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{
		TaskQueue:     envvar.TaskQueue.Get(getenv),
		WebhookSecret: getenv(webhook.SecretEnv),
		TemplatesDir:  getenv(templates.EnvDir),
		Policy:        workflows.DefaultPolicy(),
	}
	var err error
	if cfg.Config, err = redisconn.Load(getenv); err != nil {
		return Config{}, err
	}
	if cfg.WorkflowCache, err = envvar.WorkflowCache.Int(getenv, 1, "workflows"); err != nil {
		return Config{}, err
	}
	for _, d := range []struct {
		v   envvar.Var
		dst *time.Duration
	}{
		{envvar.DedupWindow, &cfg.DedupWindow},
		{envvar.AttemptTimeout, &cfg.Policy.AttemptTimeout},
		{envvar.GiveUpAfter, &cfg.Policy.GiveUpAfter},
	} {
		if *d.dst, err = d.v.Duration(getenv); err != nil {
			return Config{}, err
		}
	}
	rates, err := ratelimit.ParseRates(getenv(envvar.RateLimits.Name))
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", EnvRateLimits, err)
	}
	for name, r := range rates {
		if !slices.Contains(onceflow.Channels, onceflow.Channel(name)) {
			return Config{}, fmt.Errorf("%s: %q is not a channel", EnvRateLimits, name)
		}
		if cfg.Rates == nil {
			cfg.Rates = map[onceflow.Channel]float64{}
		}
		cfg.Rates[onceflow.Channel(name)] = r
	}
	if cfg.EgressAllow, err = egress.ParseAllow(getenv(egress.EnvAllow)); err != nil {
		return Config{}, fmt.Errorf("%s: %w", egress.EnvAllow, err)
	}
	if cfg.Preferences, err = preferences.ConfigFromEnv(getenv); err != nil {
		return Config{}, err
	}
	if err := loadEvents(getenv, &cfg); err != nil {
		return Config{}, err
	}
	if cfg.FeedTTL, err = feed.TTLFromEnv(getenv); err != nil {
		return Config{}, err
	}
	cfg.Email = email.ConfigsFromEnv(getenv)
	cfg.SMS = sms.ConfigsFromEnv(getenv)
	if c, ok := chat.ConfigFromEnv(getenv); ok {
		cfg.Chat = &c
	}
	c, ok, err := push.ConfigFromEnv(getenv)
	if err != nil {
		return Config{}, err
	}
	if ok {
		cfg.Push = &c
	}
	return cfg, nil
}
