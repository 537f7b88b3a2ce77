package worker

import (
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/chat"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/providers/email"
	"github.com/onceflow/onceflow/providers/push"
	"github.com/onceflow/onceflow/providers/sms"
	"github.com/onceflow/onceflow/providers/webhook"
	"github.com/onceflow/onceflow/ratelimit"
	"github.com/onceflow/onceflow/templates"
)

// ActivitySet is what a worker registers besides the workflows: the
// delivery core with the notification's activities, and each product's
// activities built on it.
type ActivitySet struct {
	// Deliveries: Deliver, Render and the operational events, on the
	// dedup ledger and the providers.
	Deliveries *activities.Activities
	// Preferences: CheckPreferences, on the preference store.
	Preferences *preferences.Activities
	// Broadcasts: DeliverChunk, through Deliveries.
	Broadcasts *broadcast.Activities
}

// Activities wires the activities to the Redis cfg.Config opens (one
// server or a cluster) and to the providers cfg configures. The caller
// closes the returned Redis client.
func Activities(cfg Config) (*ActivitySet, redis.UniversalClient, error) {
	ps, err := Providers(cfg)
	if err != nil {
		return nil, nil, err
	}
	rdb, err := cfg.Open(false)
	if err != nil {
		return nil, nil, err
	}
	acts := &activities.Activities{Providers: ps, Ambiguity: ambiguityPolicies()}
	if cfg.TemplatesDir != "" {
		dir, err := templates.NewDir(cfg.TemplatesDir)
		if err != nil {
			_ = rdb.Close()
			return nil, nil, err
		}
		acts.Templates = dir
	}
	acts.Store = dedup.New(rdb, cfg.DedupWindow, dedup.WaitReplicas(cfg.WaitReplicas, 0))
	acts.Critical = cfg.Preferences.Critical
	if cfg.Preferences.PublicURL != "" {
		acts.Unsubscribe = cfg.Preferences.Links()
	}
	if o := eventsOutbox(cfg, rdb); o != nil {
		acts.Events = o
	}
	acts.Feed = feed.New(rdb, cfg.FeedTTL, cfg.DedupWindow, feed.WaitReplicas(cfg.WaitReplicas, 0))
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
	return &ActivitySet{
		Deliveries:  acts,
		Preferences: preferences.NewActivities(preferences.New(rdb, cfg.Preferences.Critical)),
		Broadcasts:  broadcast.NewActivities(acts, recipients.New(rdb)),
	}, rdb, nil
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
	guard := egress.Guard{Allow: cfg.EgressAllow}
	hook, err := webhook.New(cfg.WebhookSecret, guard)
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
		if ps[onceflow.Chat], err = chat.New(*cfg.Chat, guard); err != nil {
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
