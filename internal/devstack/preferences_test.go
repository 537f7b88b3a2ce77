package devstack

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/preferences"
)

func TestDevPreferencesMakeLinksWork(t *testing.T) {
	dir := t.TempDir()
	var cfg preferences.Config
	require.NoError(t, devPreferences(&cfg, dir, "127.0.0.1:8080"))
	assert.Len(t, cfg.Secret, 64)
	assert.Equal(t, "http://127.0.0.1:8080", cfg.PublicURL)

	again := preferences.Config{}
	require.NoError(t, devPreferences(&again, dir, "0.0.0.0:8080"))
	assert.Equal(t, cfg.Secret, again.Secret, "kept in the data directory across restarts")
	assert.Empty(t, again.PublicURL, "links need https off loopback")

	set := preferences.Config{Secret: "from-the-environment-0123456789abcdef", PublicURL: "https://notify.example.com"}
	require.NoError(t, devPreferences(&set, dir, "127.0.0.1:8080"))
	assert.Equal(t, "https://notify.example.com", set.PublicURL, "the environment wins")
	assert.Equal(t, "from-the-environment-0123456789abcdef", set.Secret)
}
