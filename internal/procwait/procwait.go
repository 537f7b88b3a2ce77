// Package procwait starts a server process for tests and the dev stack and
// waits until its log says it is ready, the way redis-server and postgres
// announce it.
package procwait

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// Start starts cmd, whose log (stdout or stderr) is out, and waits until a
// log line contains ready. If the process exits first, or is not ready
// within timeout, it is killed and reaped and the error names it by what
// and quotes its last log line. The log is drained after ready so that the
// process never blocks on a full pipe.
func Start(cmd *exec.Cmd, out io.Reader, what, ready string, timeout time.Duration) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", what, err)
	}
	result := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var last string
		for sc.Scan() {
			last = sc.Text()
			if strings.Contains(last, ready) {
				result <- nil
				for sc.Scan() {
				}
				return
			}
		}
		result <- fmt.Errorf("%s exited before it was ready: %s", what, last)
	}()
	select {
	case err := <-result:
		if err != nil {
			_ = cmd.Wait()
		}
		return err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("%s was not ready within %s", what, timeout)
	}
}
