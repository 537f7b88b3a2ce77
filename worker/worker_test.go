package worker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/redisconn"
	"github.com/onceflow/onceflow/worker"
	"github.com/onceflow/onceflow/workflows"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := worker.LoadConfig(env(nil))
	require.NoError(t, err)
	assert.Equal(t, "onceflow", cfg.TaskQueue)
	assert.Equal(t, redisconn.DefaultURL, cfg.URL())
	assert.Equal(t, dedup.DefaultWindow, cfg.DedupWindow)
	assert.Equal(t, workflows.DefaultPolicy(), cfg.Policy)
	assert.Empty(t, cfg.Email)
	assert.Nil(t, cfg.Push)
	assert.Equal(t, worker.DefaultWorkflowCache, cfg.WorkflowCache)
	assert.Empty(t, cfg.EgressAllow)
}

func TestLoadConfigReadsNumberedProviders(t *testing.T) {
	cfg, err := worker.LoadConfig(env(map[string]string{
		"ONCEFLOW_SMTP_ADDR": "relay1.example:587", "ONCEFLOW_SMTP_FROM": "a@shop.example",
		"ONCEFLOW_SMTP_2_ADDR": "relay2.example:465", "ONCEFLOW_SMTP_2_FROM": "a@shop.example", "ONCEFLOW_SMTP_2_TLS": "tls",
		"ONCEFLOW_TWILIO_2_ACCOUNT_SID": "AC2",
	}))
	require.NoError(t, err)
	require.Len(t, cfg.Email, 2)
	assert.Equal(t, "relay1.example:587", cfg.Email[0].Addr)
	assert.Equal(t, "relay2.example:465", cfg.Email[1].Addr)
	assert.Equal(t, "tls", cfg.Email[1].TLS)
	require.Len(t, cfg.SMS, 1, "a numbered account alone is read too")
	assert.Equal(t, "AC2", cfg.SMS[0].AccountSID)
}

func TestBadConfigurationNamesTheVariable(t *testing.T) {
	_, err := worker.LoadConfig(env(map[string]string{"ONCEFLOW_ATTEMPT_TIMEOUT": "-3s"}))
	assert.ErrorContains(t, err, "ONCEFLOW_ATTEMPT_TIMEOUT")
	_, err = worker.LoadConfig(env(map[string]string{"ONCEFLOW_WORKFLOW_CACHE": "lots"}))
	assert.ErrorContains(t, err, "ONCEFLOW_WORKFLOW_CACHE")
	_, err = worker.LoadConfig(env(map[string]string{"ONCEFLOW_DEDUP_WINDOW": "bogus"}))
	assert.EqualError(t, err, `ONCEFLOW_DEDUP_WINDOW="bogus" is not a positive duration such as 30s or 720h`)
	_, err = worker.LoadConfig(env(map[string]string{"ONCEFLOW_REDIS_WAIT_REPLICAS": "all"}))
	assert.ErrorContains(t, err, `ONCEFLOW_REDIS_WAIT_REPLICAS="all"`)
	_, err = worker.LoadConfig(env(map[string]string{"REDIS_URL": "redis://h:1/0", "ONCEFLOW_REDIS_CA_FILE": "/ca.pem"}))
	assert.ErrorContains(t, err, "ONCEFLOW_REDIS_CA_FILE is set but REDIS_URL=redis://h:1/0 does not use TLS")
	_, err = worker.LoadConfig(env(map[string]string{"ONCEFLOW_RATE_LIMITS": "fax=5"}))
	assert.ErrorContains(t, err, "ONCEFLOW_RATE_LIMITS")
	_, err = worker.LoadConfig(env(map[string]string{"ONCEFLOW_EGRESS_ALLOW": "10.0.0.0/8,10.0.0.0/33"}))
	assert.EqualError(t, err, `ONCEFLOW_EGRESS_ALLOW: "10.0.0.0/33" is not a network such as 10.0.0.0/8 or fd00::/8`)
	_, err = worker.LoadConfig(env(map[string]string{"ONCEFLOW_FCM_CREDENTIALS_FILE": "/nonexistent/key.json"}))
	assert.ErrorContains(t, err, "ONCEFLOW_FCM_CREDENTIALS_FILE")

	cfg, err := worker.LoadConfig(env(map[string]string{
		"ONCEFLOW_WEBHOOK_SECRET": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3", "ONCEFLOW_SMTP_ADDR": "relay1.example:587",
		"ONCEFLOW_SMTP_FROM": "a@shop.example", "ONCEFLOW_SMTP_2_ADDR": "relay2", "ONCEFLOW_SMTP_2_FROM": "a@shop.example",
	}))
	require.NoError(t, err)
	_, err = worker.Providers(cfg)
	assert.ErrorContains(t, err, "smtp relay 2")
	assert.ErrorContains(t, err, "ONCEFLOW_SMTP_ADDR")
}

// TestWorkerRefusesLoopbackUnlessAllowed: a worker's webhook and chat
// providers refuse a destination on loopback by default, and reach it when
// ONCEFLOW_EGRESS_ALLOW allows it.
func TestWorkerRefusesLoopbackUnlessAllowed(t *testing.T) {
	var reached atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	defer srv.Close()
	vars := map[string]string{"ONCEFLOW_WEBHOOK_SECRET": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3", "ONCEFLOW_SLACK_ENABLED": "true"}
	send := func() []error {
		cfg, err := worker.LoadConfig(env(vars))
		require.NoError(t, err)
		ps, err := worker.Providers(cfg)
		require.NoError(t, err)
		var errs []error
		for _, ch := range []onceflow.Channel{onceflow.Webhook, onceflow.Chat} {
			_, err := ps[ch].Send(context.Background(), providers.Message{DeliveryID: "d", Key: "k", To: srv.URL, Body: "hi"})
			errs = append(errs, err)
		}
		return errs
	}
	for _, err := range send() {
		assert.ErrorContains(t, err, "destination 127.0.0.1 is a loopback address; refused by the egress guard (allow it with ONCEFLOW_EGRESS_ALLOW=127.0.0.0/8)")
		assert.True(t, providers.Classify(err).Permanent)
	}
	assert.Zero(t, reached.Load())

	vars["ONCEFLOW_EGRESS_ALLOW"] = "127.0.0.0/8"
	for _, err := range send() {
		assert.NoError(t, err)
	}
	assert.EqualValues(t, 2, reached.Load())
}

func TestPreferenceSettingsNameTheirVariable(t *testing.T) {
	for name, value := range map[string]string{
		"ONCEFLOW_CRITICAL_CATEGORIES": "security,Billing",
		"ONCEFLOW_UNSUBSCRIBE_SECRET":  "too-short",
		"ONCEFLOW_PUBLIC_URL":          "http://notify.example.com",
	} {
		_, err := worker.LoadConfig(env(map[string]string{name: value}))
		assert.ErrorContains(t, err, name)
	}
	cfg, err := worker.LoadConfig(env(map[string]string{"ONCEFLOW_CRITICAL_CATEGORIES": "security, billing"}))
	require.NoError(t, err)
	assert.True(t, cfg.Preferences.Critical.Has("billing"))
}
