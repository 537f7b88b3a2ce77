package preferences_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/preferences"
)

func checkPreferences(acts *preferences.Activities, in preferences.CheckInput) (preferences.Decision, error) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(acts.CheckPreferences, in)
	var out preferences.Decision
	if err == nil {
		err = v.Get(&out)
	}
	return out, err
}

func TestCheckPreferencesReadsTheStore(t *testing.T) {
	store := preferences.New(server.Client(t), critical(t))
	_, err := store.Put(context.Background(), "acme", "user-5", preferences.Preferences{OptOuts: []preferences.OptOut{{Category: "*", Channel: "email"}}})
	require.NoError(t, err)
	acts := preferences.NewActivities(store)
	in := preferences.CheckInput{Tenant: "acme", Subscriber: "user-5", Category: "news", Channels: []onceflow.Channel{onceflow.Email, onceflow.Webhook}}
	out, err := checkPreferences(acts, in)
	require.NoError(t, err)
	assert.Equal(t, map[onceflow.Channel]string{onceflow.Email: `the subscriber opted out of category "news" on channel email; not sent`}, out.Skip)

	in.Category = "security"
	out, err = checkPreferences(acts, in)
	require.NoError(t, err)
	assert.Empty(t, out.Skip, "critical")

	in.Tenant = ""
	in.Category = "news"
	out, err = checkPreferences(acts, in)
	require.NoError(t, err)
	assert.Empty(t, out.Skip, "another tenant's user-5")
}

func TestCheckPreferencesFailsRetryablyWithoutRedis(t *testing.T) {
	port, err := freeport.Get()
	require.NoError(t, err)
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	_, err = checkPreferences(preferences.NewActivities(preferences.New(down, nil)),
		preferences.CheckInput{Subscriber: "user-5", Category: "news", Channels: []onceflow.Channel{onceflow.Email}})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an application error, got %v", err)
	assert.Equal(t, preferences.TypeUnavailable, appErr.Type())
	assert.False(t, appErr.NonRetryable(), "retried until Redis answers: an unknown preference is not consent")
}
