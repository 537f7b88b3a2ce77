package devstack

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/onceflow/onceflow/preferences"
)

// devPreferences gives the dev stack working unsubscribe links when the
// environment sets none: a secret kept in the data directory (so that
// links in mails already sent keep working across restarts), and the
// API's own address as the public URL when it is a loopback one (the only
// http URL links may use).
func devPreferences(cfg *preferences.Config, dir, apiAddr string) error {
	if cfg.Secret == "" {
		path := filepath.Join(dir, "unsubscribe-secret")
		if b, err := os.ReadFile(path); err == nil {
			cfg.Secret = strings.TrimSpace(string(b))
		} else {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			cfg.Secret = hex.EncodeToString(key)
			if err := os.WriteFile(path, []byte(cfg.Secret+"\n"), 0o600); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
		}
	}
	if cfg.PublicURL == "" && apiAddr != "" {
		if u := "http://" + apiAddr; preferences.CheckPublicURL(u) == nil {
			cfg.PublicURL = u
		}
	}
	return nil
}
