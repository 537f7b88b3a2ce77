package procwait

import (
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func start(t *testing.T, script string, timeout time.Duration) (*exec.Cmd, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	return cmd, Start(cmd, out, "the test server", "ready to go", timeout)
}

func TestStartReturnsOnceTheServerSaysItIsReady(t *testing.T) {
	cmd, err := start(t, "echo booting; echo now ready to go; sleep 30", 10*time.Second)
	require.NoError(t, err)
	assert.Nil(t, cmd.ProcessState, "the server still runs")
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
}

func TestStartQuotesTheLastLineOfAServerThatExits(t *testing.T) {
	_, err := start(t, "echo booting; echo cannot bind port 1; exit 1", 10*time.Second)
	require.Error(t, err)
	assert.Equal(t, "the test server exited before it was ready: cannot bind port 1", err.Error())
}

func TestStartKillsAServerThatIsNotReadyInTime(t *testing.T) {
	cmd, err := start(t, "echo booting; exec sleep 30", 200*time.Millisecond)
	require.EqualError(t, err, "the test server was not ready within 200ms")
	require.NotNil(t, cmd.ProcessState, "the server was reaped")
	assert.False(t, cmd.ProcessState.Success())
}
