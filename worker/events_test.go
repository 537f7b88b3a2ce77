package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/events"
)

func TestLoadConfigReadsEvents(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	cfg, err := LoadConfig(env(nil))
	require.NoError(t, err)
	assert.Empty(t, cfg.EventsURL, "no events unless configured")
	assert.Equal(t, events.DefaultFailingAfter, cfg.EndpointFailingAfter)

	cfg, err = LoadConfig(env(map[string]string{events.EnvURL: "https://ops.example.com/onceflow", events.EnvFailingAfter: "90s"}))
	require.NoError(t, err)
	assert.Equal(t, "https://ops.example.com/onceflow", cfg.EventsURL)
	assert.Equal(t, 90*time.Second, cfg.EndpointFailingAfter)

	for name, vars := range map[string]map[string]string{
		events.EnvURL:          {events.EnvURL: "ops.example.com/onceflow"},
		events.EnvFailingAfter: {events.EnvFailingAfter: "ten minutes"},
	} {
		_, err := LoadConfig(env(vars))
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), name)
	}
}
