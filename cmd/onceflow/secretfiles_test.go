package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/providers/webhook"
)

func writeSecret(t *testing.T, content string) string {
	path := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// Secrets mounted as files (compose and Kubernetes secrets) are read
// through <name>_FILE: here a codec key file whose key is too short makes
// `status` fail the way the variable itself would, which shows the file
// was read, and the key material is not printed.
func TestSecretsAreReadFromFiles(t *testing.T) {
	secret := "c2l4dGVlbiBieXRlIGtleQ=="
	r := run(context.Background(), mapEnv{codec.EnvKeys + FileSuffix: writeSecret(t, "k1:"+secret+"\n")}, "status", "k")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, `ONCEFLOW_CODEC_KEYS entry 1 (key ID "k1"): the key is 16 bytes`)
	assert.NotContains(t, r.stderr, secret)

	r = run(context.Background(), mapEnv{codec.EnvKeys + FileSuffix: filepath.Join(t.TempDir(), "missing")}, "status", "k")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "ONCEFLOW_CODEC_KEYS_FILE")

	r = run(context.Background(), mapEnv{codec.EnvKeys: "k1:" + secret, codec.EnvKeys + FileSuffix: writeSecret(t, "k1:"+secret)}, "status", "k")
	assert.Equal(t, exitInput, r.code)
	assert.Contains(t, r.stderr, "both ONCEFLOW_CODEC_KEYS and ONCEFLOW_CODEC_KEYS_FILE are set")

	env, err := secretFiles(mapEnv{webhook.SecretEnv + FileSuffix: writeSecret(t, "whsec_abc\r\n"), "OTHER": "x"})
	require.NoError(t, err)
	v, ok := env.LookupEnv(webhook.SecretEnv)
	assert.True(t, ok)
	assert.Equal(t, "whsec_abc", v)
	v, _ = env.LookupEnv("OTHER")
	assert.Equal(t, "x", v)
}
