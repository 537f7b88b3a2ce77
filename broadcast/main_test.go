package broadcast_test

import (
	"testing"

	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/internal/teststack"
)

var servers teststack.Servers

func TestMain(m *testing.M) { teststack.Main(m, &servers) }

// newStack is a webhook-only worker on its own task queue, its dedup store
// wrapped by wrap when wrap is not nil.
func newStack(t *testing.T, wrap func(activities.Store) activities.Store) *teststack.Stack {
	t.Helper()
	return servers.New(t, servers.WorkerConfig(), wrap)
}
