package worker

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A malformed REDIS_URL is reported without its password, whichever part
// of it is malformed: the worker prints this error and exits.
func TestBadRedisURLErrorsKeepThePasswordOut(t *testing.T) {
	for raw, says := range map[string]string{
		"redis://user:s3cret@host:notaport":      `invalid port ":notaport"`,
		"rediss://:s3cret@[::1":                  "missing ']'",
		"redis://user:s3cret@host:6379/x":        "invalid database number",
		"http://user:s3cret@host:6379":           "invalid URL scheme",
		"redis://u:s3cret@h:1/0?dial_timeout=zz": "invalid dial_timeout",
		"redis://u:s3%zzcret@h:1":                "user or password does not parse",
		"redis://u:s3cret%@h:1":                  "user or password does not parse",
		"u:s3cret@host":                          "REDIS_URL",
	} {
		_, err := ParseRedisURL(raw)
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), "s3", raw)
		assert.NotContains(t, err.Error(), "cret", raw)
		assert.Contains(t, err.Error(), says, raw)
		assert.Contains(t, err.Error(), EnvRedisURL, raw)
		_, _, err = Ledger(raw)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "cret", raw)
		_, _, err = Activities(Config{RedisURL: raw, WebhookSecret: "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="})
		require.Error(t, err)
		assert.Contains(t, err.Error(), EnvRedisURL, raw)
		assert.NotContains(t, err.Error(), "cret", raw)
	}
	opts, err := ParseRedisURL("redis://user:s3cret@host:6380/2")
	require.NoError(t, err)
	assert.Equal(t, "s3cret", opts.Password)
	assert.Equal(t, "redis://user:xxxxx@host:6380/2", RedactRedisURL("redis://user:s3cret@host:6380/2"))
	assert.Equal(t, "redis://host:6380/2", RedactRedisURL("redis://host:6380/2"))
}
