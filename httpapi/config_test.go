package httpapi_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/httpapi"
)

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := httpapi.LoadConfig(env(nil))
	require.NoError(t, err)
	assert.Equal(t, "onceflow", cfg.TaskQueue)
	assert.Equal(t, dedup.DefaultWindow, cfg.DedupWindow)
	assert.Equal(t, feed.DefaultTTL, cfg.FeedTTL)
	assert.False(t, cfg.Redis.Configured(), "without REDIS_URL the API runs without Redis")
	assert.Nil(t, cfg.Signer)
}

// A value the worker refuses is refused by the API too, with the same
// error: the API used to keep broadcasts' recipient lists for the default
// window when ONCEFLOW_DEDUP_WINDOW did not parse.
func TestBadValuesNameTheirVariable(t *testing.T) {
	for _, c := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"ONCEFLOW_DEDUP_WINDOW": "bogus"}, `ONCEFLOW_DEDUP_WINDOW="bogus" is not a positive duration`},
		{map[string]string{"ONCEFLOW_MAX_SEND_AHEAD": "-1h"}, `ONCEFLOW_MAX_SEND_AHEAD="-1h" is not a positive duration`},
		{map[string]string{"ONCEFLOW_FEED_TTL": "soon"}, `ONCEFLOW_FEED_TTL="soon"`},
		{map[string]string{"ONCEFLOW_REDIS_WAIT_REPLICAS": "all"}, `ONCEFLOW_REDIS_WAIT_REPLICAS="all"`},
		{map[string]string{"REDIS_URL": "redis://h:x"}, "REDIS_URL=redis://h:x is not a valid Redis URL"},
		{map[string]string{"ONCEFLOW_SUBSCRIBER_TOKEN_SECRET": "short"}, "ONCEFLOW_SUBSCRIBER_TOKEN_SECRET is 5 bytes"},
		{map[string]string{"ONCEFLOW_PUBLIC_URL": "notify.example.com"}, "ONCEFLOW_PUBLIC_URL"},
		{map[string]string{"REDIS_URL": "redis://h:1", "ONCEFLOW_REDIS_CA_FILE": "x"}, "ONCEFLOW_REDIS_CA_FILE is set but REDIS_URL=redis://h:1 does not use TLS"},
		{map[string]string{"ONCEFLOW_FEED_LIMIT_PER_ADDRESS": "many"}, `ONCEFLOW_FEED_LIMIT_PER_ADDRESS: "many" is not <requests>/<period>`},
		{map[string]string{"ONCEFLOW_TRUSTED_PROXIES": "proxy.internal"}, `ONCEFLOW_TRUSTED_PROXIES: "proxy.internal" is not a network`},
	} {
		_, err := httpapi.LoadConfig(env(c.vars))
		assert.ErrorContains(t, err, c.want)
	}
}
