package webhook_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers/webhook"
)

// While a secret rotates, ONCEFLOW_WEBHOOK_SECRET lists the new one beside
// the old, and every webhook carries a signature under each: a receiver
// that knows only the old secret and one that knows only the new both
// accept it, and one that knows neither does not.
func TestRotatingSecretsSignWithEach(t *testing.T) {
	newKey := []byte("fedcba9876543210fedcba9876543210")
	both := secret() + ", whsec_" + base64.StdEncoding.EncodeToString(newKey)
	s, err := webhook.New(both, loopback)
	require.NoError(t, err)
	srv, got := receiver(t)
	_, err = s.Send(context.Background(), message(srv.URL+"/hooks"))
	require.NoError(t, err)
	req := got()[0]
	assert.Len(t, strings.Fields(req.header.Get("webhook-signature")), 2)
	assert.True(t, webhook.Verify(secretKey, req.header, req.body), "a receiver with the old secret")
	assert.True(t, webhook.Verify(newKey, req.header, req.body), "a receiver with the new secret")
	assert.False(t, webhook.Verify([]byte("0000000000000000"), req.header, req.body), "a receiver with neither")

	_, err = webhook.New(secret()+",whsec_short", loopback)
	assert.ErrorContains(t, err, "(entry 2)")
	assert.ErrorContains(t, err, webhook.SecretEnv)
	_, err = webhook.New(secret()+",", loopback)
	assert.ErrorContains(t, err, "(entry 2)")
}
