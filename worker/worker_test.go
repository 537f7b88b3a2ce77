package worker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/worker"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := worker.LoadConfig(env(nil))
	require.NoError(t, err)
	assert.Equal(t, "onceflow", cfg.TaskQueue)
	assert.Equal(t, worker.DefaultRedisURL, cfg.RedisURL)
	assert.Equal(t, 720*time.Hour, cfg.DedupWindow)
	assert.Equal(t, 30*time.Second, cfg.Policy.AttemptTimeout)
	assert.Empty(t, cfg.Email)
	assert.Nil(t, cfg.Push)
	assert.Equal(t, worker.DefaultWorkflowCache, cfg.WorkflowCache)
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
	_, err = worker.LoadConfig(env(map[string]string{"ONCEFLOW_RATE_LIMITS": "fax=5"}))
	assert.ErrorContains(t, err, "ONCEFLOW_RATE_LIMITS")
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
