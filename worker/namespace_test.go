package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDedupWindowMustOutliveRetentionPlusGiveUp(t *testing.T) {
	day := 24 * time.Hour
	// 72h retention and a delivery that may retry for 24h: records kept
	// 80h could expire while the workflow that wrote them is still kept.
	err := windowCoversRetention("default", 80*time.Hour, 3*day, day)
	require.Error(t, err)
	assert.Contains(t, err.Error(), EnvDedupWindow)
	assert.Contains(t, err.Error(), EnvGiveUpAfter)
	assert.NoError(t, windowCoversRetention("default", 97*time.Hour, 3*day, day))
	assert.NoError(t, windowCoversRetention("default", time.Hour, 0, day), "no retention: nothing is deleted")
}
