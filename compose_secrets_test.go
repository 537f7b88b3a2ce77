package onceflow_test

import (
	"context"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The database password is a required variable: no default that every
// copy of the stack shares.
func TestComposeRequiresADatabasePassword(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"}, cli.WithEnv([]string{"POSTGRES_PASSWORD="}), cli.WithName("onceflow"))
	require.NoError(t, err)
	_, err = opts.LoadProject(context.Background())
	assert.ErrorContains(t, err, "POSTGRES_PASSWORD")

	p := loadCompose(t)
	assert.Equal(t, testDBPassword, *service(t, p, "postgresql").Environment["POSTGRES_PASSWORD"])
	assert.Equal(t, testDBPassword, *service(t, p, "temporal").Environment["POSTGRES_PWD"])
	assert.Equal(t, testDBPassword, *service(t, p, "temporal-schema").Environment["SQL_PASSWORD"])
}

// Secrets reach the containers as compose secrets (files under
// /run/secrets), named by the *_FILE variables, never as values in the
// environment, where `docker inspect` shows them.
func TestComposePassesSecretsAsFiles(t *testing.T) {
	p := loadCompose(t)
	want := map[string]map[string]string{
		"onceflow-worker": {"ONCEFLOW_WEBHOOK_SECRET_FILE": "webhook-secret", "ONCEFLOW_CODEC_KEYS_FILE": "codec-keys", "ONCEFLOW_UNSUBSCRIBE_SECRET_FILE": "unsubscribe-secret"},
		"onceflow-api": {"ONCEFLOW_API_TOKENS_FILE": "api-tokens", "ONCEFLOW_CODEC_KEYS_FILE": "codec-keys",
			"ONCEFLOW_UNSUBSCRIBE_SECRET_FILE": "unsubscribe-secret", "ONCEFLOW_SUBSCRIBER_TOKEN_SECRET_FILE": "subscriber-token-secret"},
	}
	for name, files := range want {
		s := service(t, p, name)
		mounted := map[string]bool{}
		for _, sec := range s.Secrets {
			mounted[sec.Source] = true
			_, declared := p.Secrets[sec.Source]
			assert.True(t, declared, "%s uses the declared secret %s", name, sec.Source)
		}
		for variable, secret := range files {
			require.NotNil(t, s.Environment[variable], "%s: %s", name, variable)
			assert.Equal(t, "/run/secrets/"+secret, *s.Environment[variable], "%s: %s", name, variable)
			assert.True(t, mounted[secret], "%s mounts the secret %s", name, secret)
		}
	}
	for name, s := range p.Services {
		for _, variable := range []string{"ONCEFLOW_WEBHOOK_SECRET", "ONCEFLOW_CODEC_KEYS", "ONCEFLOW_TWILIO_AUTH_TOKEN", "ONCEFLOW_SMTP_PASSWORD", "ONCEFLOW_SLACK_BOT_TOKEN", "ONCEFLOW_UNSUBSCRIBE_SECRET", "ONCEFLOW_SUBSCRIBER_TOKEN_SECRET"} {
			assert.NotContains(t, s.Environment, variable, "%s carries %s in its environment", name, variable)
		}
	}
	for name, sec := range p.Secrets {
		assert.True(t, strings.Contains(sec.File, "/secrets/"), "secret %s is a file under ./secrets (git-ignored)", name)
	}
}

// The Web UI decrypts payloads through the API's codec endpoint, at the
// address a browser on the host reaches, and the API lets the UI's origin
// call it.
func TestComposeWiresTheUIToTheCodecEndpoint(t *testing.T) {
	p := loadCompose(t)
	ui := service(t, p, "temporal-ui")
	require.NotNil(t, ui.Environment["TEMPORAL_CODEC_ENDPOINT"])
	api := service(t, p, "onceflow-api")
	require.NotEmpty(t, api.Ports)
	assert.Equal(t, "http://localhost:"+api.Ports[0].Published+"/codec", *ui.Environment["TEMPORAL_CODEC_ENDPOINT"])
	require.NotEmpty(t, ui.Ports)
	require.NotNil(t, api.Environment["ONCEFLOW_CODEC_ORIGINS"])
	assert.Contains(t, strings.Split(*api.Environment["ONCEFLOW_CODEC_ORIGINS"], ","), "http://localhost:"+ui.Ports[0].Published)
}
