package onceflow_test

import (
	"context"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The operator's OTEL_* and events settings reach the workers (and the
// OTEL_* ones the API) from the shell `docker compose` runs in; unset, they
// are empty, which leaves tracing and events off.
func TestComposePassesTracingAndEventsThrough(t *testing.T) {
	p := loadCompose(t)
	for _, name := range []string{"onceflow-worker", "onceflow-api"} {
		env := service(t, p, name).Environment
		for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER"} {
			require.NotNil(t, env[v], "%s: %s", name, v)
			assert.Empty(t, *env[v], "%s: %s is off unless the shell sets it", name, v)
		}
	}
	require.NotNil(t, service(t, p, "onceflow-worker").Environment["ONCEFLOW_EVENTS_URL"])
	// Workers and the API agree on the critical categories and the public
	// URL unsubscribe links point at.
	for _, v := range []string{"ONCEFLOW_CRITICAL_CATEGORIES", "ONCEFLOW_PUBLIC_URL"} {
		w, a := service(t, p, "onceflow-worker").Environment[v], service(t, p, "onceflow-api").Environment[v]
		require.NotNil(t, w, v)
		require.NotNil(t, a, v)
		assert.Equal(t, *w, *a, v)
	}

	opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"}, cli.WithEnv([]string{
		"POSTGRES_PASSWORD=" + testDBPassword,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318",
		"ONCEFLOW_EVENTS_URL=https://ops.example.com/onceflow",
		"ONCEFLOW_CRITICAL_CATEGORIES=security,billing",
	}), cli.WithName("onceflow"))
	require.NoError(t, err)
	set, err := opts.LoadProject(context.Background())
	require.NoError(t, err)
	for _, name := range []string{"onceflow-worker", "onceflow-api"} {
		assert.Equal(t, "http://otel-collector:4318", *service(t, set, name).Environment["OTEL_EXPORTER_OTLP_ENDPOINT"], name)
	}
	assert.Equal(t, "https://ops.example.com/onceflow", *service(t, set, "onceflow-worker").Environment["ONCEFLOW_EVENTS_URL"])
	for _, name := range []string{"onceflow-worker", "onceflow-api"} {
		assert.Equal(t, "security,billing", *service(t, set, name).Environment["ONCEFLOW_CRITICAL_CATEGORIES"], name)
	}
}
