package httpapi

import (
	"time"

	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/internal/envvar"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/redisconn"
)

// Config is what the API reads from the environment besides its listen
// address and token file (flags with defaults in the environment) and
// Temporal's settings. The CLI's commands that act as the API's client
// (send, broadcast, preferences, feed, subscriber-token) read it too, so
// that a value the API refuses is refused by them as well.
type Config struct {
	// TaskQueue is where notifications are started (ONCEFLOW_TASK_QUEUE).
	TaskQueue string
	// MaxSendAhead bounds how far ahead send_at may be
	// (ONCEFLOW_MAX_SEND_AHEAD).
	MaxSendAhead time.Duration
	// Redis is how the API reaches the ledger, broadcasts' recipient
	// lists, preferences and the in-app feed; without REDIS_URL it runs
	// without them (redisconn.Config.Configured).
	Redis redisconn.Config
	// DedupWindow is how long broadcasts' recipient lists are kept past
	// their send_at: the workers' dedup window (ONCEFLOW_DEDUP_WINDOW).
	DedupWindow time.Duration
	// FeedTTL is how long in-app feed items are kept (ONCEFLOW_FEED_TTL).
	FeedTTL time.Duration
	// Preferences are the critical categories and the unsubscribe links'
	// secret and public URL.
	Preferences preferences.Config
	// FeedOrigins are the page origins allowed to read feeds from a
	// browser (ONCEFLOW_FEED_ORIGINS).
	FeedOrigins []string
	// Signer signs and verifies subscriber tokens
	// (ONCEFLOW_SUBSCRIBER_TOKEN_SECRET); nil when it is unset.
	Signer *feed.Signer
	// Limits bound the routes that need no app token (WithLimits).
	Limits Limits
}

// LoadConfig reads the API's configuration through getenv (os.Getenv in
// production). A bad value is an error that names its variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{
		TaskQueue:   envvar.TaskQueue.Get(getenv),
		FeedOrigins: ParseOrigins(getenv(envvar.FeedOrigins.Name)),
	}
	var err error
	if cfg.Redis, err = redisconn.Load(getenv); err != nil {
		return Config{}, err
	}
	if cfg.MaxSendAhead, err = envvar.MaxSendAhead.Duration(getenv); err != nil {
		return Config{}, err
	}
	if cfg.DedupWindow, err = envvar.DedupWindow.Duration(getenv); err != nil {
		return Config{}, err
	}
	if cfg.FeedTTL, err = feed.TTLFromEnv(getenv); err != nil {
		return Config{}, err
	}
	if cfg.Preferences, err = preferences.ConfigFromEnv(getenv); err != nil {
		return Config{}, err
	}
	if cfg.Limits, err = LoadLimits(getenv); err != nil {
		return Config{}, err
	}
	if secret := getenv(envvar.SubscriberTokenSecret.Name); secret != "" {
		if cfg.Signer, err = feed.NewSigner(secret); err != nil {
			return Config{}, err
		}
	}
	return cfg, nil
}
