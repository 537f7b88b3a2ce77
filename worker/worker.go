// Package worker builds and runs an Onceflow worker: it registers the
// notification workflow and the Deliver activity on a task queue, wires the
// dedup store and the providers, and stops gracefully. Workers share nothing
// but Temporal and Redis, so any number of them can poll one task queue.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/chat"
	"github.com/onceflow/onceflow/providers/email"
	"github.com/onceflow/onceflow/providers/push"
	"github.com/onceflow/onceflow/providers/sms"
	"github.com/onceflow/onceflow/providers/webhook"
	"github.com/onceflow/onceflow/ratelimit"
	"github.com/onceflow/onceflow/templates"
	"github.com/onceflow/onceflow/workflows"
)

// Config is what a worker needs besides its Temporal client.
type Config struct {
	TaskQueue     string
	RedisURL      string
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
	// DedupWindow is how long dedup records are kept; it must outlive the
	// namespace's retention so that a key re-sent after its workflow was
	// deleted is still suppressed.
	DedupWindow time.Duration
	Policy      workflows.Policy
	// WorkflowCache is how many workflows the worker process keeps in
	// memory between tasks; 0 keeps the SDK's default (10,000). Onceflow's
	// default is DefaultWorkflowCache.
	WorkflowCache int
}

// Environment variables read by LoadConfig, with their defaults.
const (
	EnvTaskQueue      = "ONCEFLOW_TASK_QUEUE"      // onceflow
	EnvRedisURL       = "REDIS_URL"                // redis://127.0.0.1:6379/0
	EnvDedupWindow    = "ONCEFLOW_DEDUP_WINDOW"    // 720h
	EnvAttemptTimeout = "ONCEFLOW_ATTEMPT_TIMEOUT" // 30s
	EnvGiveUpAfter    = "ONCEFLOW_GIVE_UP_AFTER"   // 24h
	EnvRateLimits     = "ONCEFLOW_RATE_LIMITS"     // none; e.g. sms=50,email=20 (sends per second)
	EnvWorkflowCache  = "ONCEFLOW_WORKFLOW_CACHE"  // 1000 workflows
)

// DefaultWorkflowCache is the worker's workflow cache. The SDK keeps
// 10,000 by default; a notification waiting on send_at then costs its
// worker about 33 KB and slowed immediate notifications by a fifth
// (docs/benchmarks.md). With 1,000, one waiting costs about 4 KB and
// immediate throughput is unchanged; a workflow evicted from the cache is
// replayed from its short history when its timer fires.
const DefaultWorkflowCache = 1000

// DefaultRedisURL is used when REDIS_URL is not set.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// LoadConfig reads the worker's configuration from the environment through
// getenv (os.Getenv in production). An unparsable value is an error that
// names its variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{
		TaskQueue:     getenv(EnvTaskQueue),
		RedisURL:      getenv(EnvRedisURL),
		WebhookSecret: getenv(webhook.SecretEnv),
		TemplatesDir:  getenv(templates.EnvDir),
		DedupWindow:   dedup.DefaultWindow,
		Policy:        workflows.DefaultPolicy(),
		WorkflowCache: DefaultWorkflowCache,
	}
	if cfg.TaskQueue == "" {
		cfg.TaskQueue = workflows.DefaultTaskQueue
	}
	if cfg.RedisURL == "" {
		cfg.RedisURL = DefaultRedisURL
	}
	if v := getenv(EnvWorkflowCache); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("%s=%q is not a positive number of workflows", EnvWorkflowCache, v)
		}
		cfg.WorkflowCache = n
	}
	rates, err := ratelimit.ParseRates(getenv(EnvRateLimits))
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
	for n := 1; n <= maxProvidersPerChannel; n++ {
		if c, ok := email.ConfigFromEnv(numbered(getenv, "ONCEFLOW_SMTP_", n)); ok {
			cfg.Email = append(cfg.Email, c)
		}
		if c, ok := sms.ConfigFromEnv(numbered(getenv, "ONCEFLOW_TWILIO_", n)); ok {
			cfg.SMS = append(cfg.SMS, c)
		}
	}
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
	for name, dst := range map[string]*time.Duration{
		EnvDedupWindow:    &cfg.DedupWindow,
		EnvAttemptTimeout: &cfg.Policy.AttemptTimeout,
		EnvGiveUpAfter:    &cfg.Policy.GiveUpAfter,
	} {
		v := getenv(name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("%s=%q is not a positive duration such as 30s or 720h", name, v)
		}
		*dst = d
	}
	return cfg, nil
}

// New returns a worker on taskQueue that runs the notification workflow
// under policy and the given activities. Start or Run it.
func New(tc client.Client, taskQueue string, policy workflows.Policy, acts *activities.Activities) sdkworker.Worker {
	w := sdkworker.New(tc, taskQueue, sdkworker.Options{
		// Let in-flight sends finish and commit before the process exits.
		WorkerStopTimeout: policy.AttemptTimeout,
	})
	w.RegisterWorkflowWithOptions(workflows.New(policy).Run, workflow.RegisterOptions{Name: workflows.Name})
	w.RegisterActivity(acts)
	return w
}

// Activities wires the Deliver activity to Redis at cfg.RedisURL and to the
// providers cfg configures. The caller closes the returned Redis client.
func Activities(cfg Config) (*activities.Activities, *redis.Client, error) {
	ps, err := Providers(cfg)
	if err != nil {
		return nil, nil, err
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", EnvRedisURL, err)
	}
	acts := &activities.Activities{Providers: ps, Ambiguity: ambiguityPolicies()}
	if cfg.TemplatesDir != "" {
		dir, err := templates.NewDir(cfg.TemplatesDir)
		if err != nil {
			return nil, nil, err
		}
		acts.Templates = dir
	}
	rdb := redis.NewClient(opts)
	acts.Store = dedup.New(rdb, cfg.DedupWindow)
	for ch, rate := range cfg.Rates {
		l, err := ratelimit.New(rdb, string(ch), rate)
		if err != nil {
			_ = rdb.Close()
			return nil, nil, err
		}
		if acts.Limits == nil {
			acts.Limits = map[onceflow.Channel]activities.Limiter{}
		}
		acts.Limits[ch] = l
	}
	return acts, rdb, nil
}

// ambiguityPolicies says, per channel, what a delivery does when an earlier
// attempt may have sent it: re-send where the receiving end deduplicates by
// the delivery ID (Standard Webhooks receivers by webhook-id; devices
// collapse pushes with the same collapse ID), hold and report elsewhere (an
// SMS, a chat message or a mail sent twice is seen twice).
func ambiguityPolicies() map[onceflow.Channel]activities.AmbiguityPolicy {
	return map[onceflow.Channel]activities.AmbiguityPolicy{
		onceflow.Webhook: activities.Resend,
		onceflow.Push:    activities.Resend,
		onceflow.Email:   activities.Hold,
		onceflow.SMS:     activities.Hold,
		onceflow.Chat:    activities.Hold,
	}
}

// maxProvidersPerChannel bounds the numbered fallback providers read from
// the environment: ONCEFLOW_SMTP_ADDR, then ONCEFLOW_SMTP_2_ADDR, ...
const maxProvidersPerChannel = 3

// numbered reads the variables of the nth provider of a channel: for n > 1,
// prefix+"X" is read as prefix+"n_X".
func numbered(getenv func(string) string, prefix string, n int) func(string) string {
	if n == 1 {
		return getenv
	}
	return func(name string) string {
		return getenv(prefix + strconv.Itoa(n) + "_" + strings.TrimPrefix(name, prefix))
	}
}

// chain is one provider, or several tried in order.
func chain[C any](configs []C, build func(C) (providers.Provider, error), name func(int, C) string) (providers.Provider, error) {
	var c providers.Chain
	for i, cfg := range configs {
		p, err := build(cfg)
		if err != nil {
			if len(configs) > 1 {
				return nil, fmt.Errorf("%s: %w", name(i, cfg), err)
			}
			return nil, err
		}
		c = append(c, providers.Named{Name: name(i, cfg), Provider: p})
	}
	if len(c) == 1 {
		return c[0].Provider, nil
	}
	return c, nil
}

// Providers builds the provider of every channel cfg configures.
func Providers(cfg Config) (map[onceflow.Channel]providers.Provider, error) {
	hook, err := webhook.New(cfg.WebhookSecret)
	if err != nil {
		return nil, err
	}
	ps := map[onceflow.Channel]providers.Provider{onceflow.Webhook: hook}
	if len(cfg.Email) > 0 {
		ps[onceflow.Email], err = chain(cfg.Email,
			func(c email.Config) (providers.Provider, error) { return email.New(c) },
			func(i int, c email.Config) string { return fmt.Sprintf("smtp relay %d (%s)", i+1, c.Addr) })
		if err != nil {
			return nil, err
		}
	}
	if len(cfg.SMS) > 0 {
		ps[onceflow.SMS], err = chain(cfg.SMS,
			func(c sms.Config) (providers.Provider, error) { return sms.New(c) },
			func(i int, _ sms.Config) string { return fmt.Sprintf("twilio account %d", i+1) })
		if err != nil {
			return nil, err
		}
	}
	if cfg.Chat != nil {
		if ps[onceflow.Chat], err = chat.New(*cfg.Chat); err != nil {
			return nil, err
		}
	}
	if cfg.Push != nil {
		if ps[onceflow.Push], err = push.New(*cfg.Push); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// Run runs a worker until ctx is done, then stops it gracefully. It refuses
// to start when Redis is unreachable or when the dedup window does not
// outlive the namespace's retention.
func Run(ctx context.Context, tc client.Client, namespace string, cfg Config, logger *slog.Logger) error {
	acts, rdb, err := Activities(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rdb.Ping(pingCtx).Err(); err != nil {
		return fmt.Errorf("redis at %s (%s): %w", redactRedisURL(cfg.RedisURL), EnvRedisURL, err)
	}
	if err := checkRetention(pingCtx, tc, namespace, cfg.DedupWindow); err != nil {
		return err
	}
	if err := RegisterSearchAttributes(pingCtx, tc, namespace); err != nil {
		return err
	}
	if cfg.WorkflowCache > 0 {
		// A process-wide SDK setting; Run owns the process's workers.
		sdkworker.SetStickyWorkflowCacheSize(cfg.WorkflowCache)
	}
	w := New(tc, cfg.TaskQueue, cfg.Policy, acts)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %q: %w", cfg.TaskQueue, err)
	}
	var channels []string
	for _, c := range onceflow.Channels {
		if _, ok := acts.Providers[c]; ok {
			channels = append(channels, string(c))
		}
	}
	logger.Info("Worker started", "task_queue", cfg.TaskQueue, "namespace", namespace, "redis", redactRedisURL(cfg.RedisURL), "channels", channels)
	<-ctx.Done()
	logger.Info("Worker stopping; in-flight deliveries may take up to the attempt timeout", "attempt_timeout", cfg.Policy.AttemptTimeout)
	w.Stop()
	logger.Info("Worker stopped")
	return nil
}

// RegisterSearchAttributes adds to namespace the search attributes that
// notifications carry, unless it has them already. Workers need them: a
// workflow that sets an unregistered attribute cannot make progress.
func RegisterSearchAttributes(ctx context.Context, tc client.Client, namespace string) error {
	have, err := tc.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %q: %w", namespace, err)
	}
	missing := make(map[string]enums.IndexedValueType)
	for name, typ := range workflows.SearchAttributeTypes {
		got, ok := have.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case got != typ:
			return fmt.Errorf("namespace %q has search attribute %s of type %v; Onceflow needs %v", namespace, name, got, typ)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = tc.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register search attributes %v in namespace %q (on Temporal Cloud, add them with tcld or the Cloud UI): %w", slices.Sorted(maps.Keys(missing)), namespace, err)
	}
	return nil
}

func checkRetention(ctx context.Context, tc client.Client, namespace string, window time.Duration) error {
	ns, err := tc.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("describe namespace %q: %w", namespace, err)
	}
	retention := ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration()
	if retention > 0 && window <= retention {
		return fmt.Errorf("%s=%v must be longer than namespace %q's retention of %v, or a key re-sent after its workflow is deleted would be delivered again",
			EnvDedupWindow, window, namespace, retention)
	}
	return nil
}

// redactRedisURL drops the password from a Redis URL for logs and errors.
func redactRedisURL(raw string) string {
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return fmt.Sprintf("%s db %d", opts.Addr, opts.DB)
}
