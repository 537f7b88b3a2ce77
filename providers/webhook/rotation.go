package webhook

import (
	"fmt"
	"strings"
	"time"
)

// ParseSecrets decodes SecretEnv's value: one Standard Webhooks secret, or
// several separated by commas while one is being rotated. Every webhook is
// signed with each (SignAll), which the specification allows so that
// secrets rotate without downtime: list the new secret beside the old,
// move the receivers to the new one, then drop the old.
func ParseSecrets(s string) ([][]byte, error) {
	var keys [][]byte
	for i, entry := range strings.Split(s, ",") {
		key, err := ParseSecret(strings.TrimSpace(entry))
		if err != nil {
			if strings.Contains(s, ",") {
				return nil, fmt.Errorf("%w (entry %d)", err, i+1)
			}
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// SignAll returns the webhook-signature header value for one request
// signed with every key: their v1 signatures, space-separated.
func SignAll(keys [][]byte, id string, timestamp time.Time, body []byte) string {
	sigs := make([]string, len(keys))
	for i, key := range keys {
		sigs[i] = Sign(key, id, timestamp, body)
	}
	return strings.Join(sigs, " ")
}
