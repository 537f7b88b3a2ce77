package testenv

import (
	"bytes"
	"os/exec"
	"testing"
)

// Promtool runs Prometheus's promtool with args and stdin, and fails t
// with its output when it does not accept the input. scripts/deps.sh
// installs it (Debian package prometheus) for the test scripts.
func Promtool(t testing.TB, stdin []byte, args ...string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed (Debian: apt-get install prometheus; scripts/test.sh installs it): %v", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
}
