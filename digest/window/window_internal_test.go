package window

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/onceflow/onceflow"
)

func TestTrimRecentKeepsTheNewest(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	recent := map[string]time.Time{"a": t0, "b": t0.Add(time.Second), "c": t0, "d": t0.Add(2 * time.Second)}
	trimRecent(recent, 2)
	assert.Equal(t, map[string]time.Time{"b": t0.Add(time.Second), "d": t0.Add(2 * time.Second)}, recent)
	trimRecent(recent, 5)
	assert.Len(t, recent, 2, "under the limit nothing is dropped")
}

func TestDigestNotificationKeyFitsAKey(t *testing.T) {
	opened := time.Date(2026, 11, 26, 12, 0, 0, 123e6, time.UTC)
	assert.Equal(t, "digest:user-42:comments:20261126T120000.123Z", digestNotificationKey("user-42", "comments", opened))
	long := digestNotificationKey(strings.Repeat("u", onceflow.MaxSubscriberLength), strings.Repeat("k", 64), opened)
	assert.NoError(t, onceflow.ValidateKey(long), "a subscriber and digest key too long for a readable key are hashed")
	assert.NotEqual(t, long, digestNotificationKey(strings.Repeat("u", onceflow.MaxSubscriberLength-1), strings.Repeat("k", 64), opened))
}
