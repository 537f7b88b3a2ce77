package pgproc_test

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/pgproc"
)

func TestStartServesOnLoopbackAndStopCleansUp(t *testing.T) {
	s, err := pgproc.Start("max_connections=50")
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			s.Stop()
		}
	})
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	require.NoError(t, err, "postgres listens on %s", s.Addr)
	_ = c.Close()
	assert.Contains(t, s.URL("temporal"), "@"+s.Addr+"/temporal")
	assert.NotEmpty(t, s.Password())

	s.Stop()
	stopped = true
	_, err = net.DialTimeout("tcp", s.Addr, time.Second)
	assert.Error(t, err, "nothing listens on %s once stopped", s.Addr)
}
