// Package typescript_test runs the TypeScript client's own checks and
// tests (clients/typescript, under Node.js) from the Go suite, so that the
// README's test command covers them: the generated types are not stale,
// Redocly's recommended rules and swagger-parser accept the OpenAPI
// document, the client compiles under tsc --strict, and its tests pass
// against a real `onceflow dev`.
package typescript_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/freeport"
)

// minNode is what the client's tools need (Redocly CLI: 20.19).
const minNode = "v20.19"

func TestTypeScriptClient(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the TypeScript client's checks need npm and a dev stack")
	}
	requireNode(t)
	npm(t, nil, "ci", "--no-audit", "--no-fund")
	t.Run("generated types are current", func(t *testing.T) {
		npm(t, nil, "run", "check:generated")
	})
	t.Run("Redocly and swagger-parser accept the document", func(t *testing.T) {
		npm(t, nil, "run", "check:document")
	})
	npm(t, nil, "run", "build")

	stack := startDev(t)
	t.Run("against onceflow dev", func(t *testing.T) {
		npm(t, stack, "test")
	})
}

func requireNode(t *testing.T) {
	out, err := exec.Command("node", "--version").Output()
	require.NoError(t, err, "Node.js %s or later is needed (scripts/deps.sh installs it)", minNode)
	version := strings.TrimSpace(string(out))
	require.True(t, versionAtLeast(version, minNode), "Node.js %s is older than %s (scripts/deps.sh)", version, minNode)
}

// versionAtLeast compares "vMAJOR.MINOR..." versions.
func versionAtLeast(have, want string) bool {
	parse := func(v string) (int, int) {
		parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
		major, _ := strconv.Atoi(parts[0])
		minor := 0
		if len(parts) > 1 {
			minor, _ = strconv.Atoi(parts[1])
		}
		return major, minor
	}
	hm, hn := parse(have)
	wm, wn := parse(want)
	return hm > wm || hm == wm && hn >= wn
}

// npm runs npm in this directory with env added to the test's own, and
// fails the test with npm's output when it fails.
func npm(t *testing.T, env []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "npm %s:\n%s", strings.Join(args, " "), out)
	t.Logf("npm %s:\n%s", strings.Join(args, " "), out)
}

var apiLine = regexp.MustCompile(`HTTP API\s+(http://\S+)/v1/notifications`)

// startDev builds onceflow and runs `onceflow dev` with a token file and
// the secrets the client's tests verify with, and returns the variables
// that tell the tests where it is.
func startDev(t *testing.T) []string {
	dir := t.TempDir()
	bin := filepath.Join(dir, "onceflow")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/onceflow/onceflow/cmd/onceflow").CombinedOutput()
	require.NoError(t, err, "build onceflow: %s", out)

	token := random(t, 24)
	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte(httpapi.HashLine("acme", token)+"\n"), 0o600))
	webhookSecret := "whsec_" + random(t, 24)
	temporalPort, err := freeport.Get()
	require.NoError(t, err)

	cmd := exec.Command(bin, "dev", "--data-dir", filepath.Join(dir, "data"), "--temporal-port", strconv.Itoa(temporalPort),
		"--ui-port", "0", "--api-addr", "127.0.0.1:0", "--tokens-file", tokens)
	cmd.Env = append(os.Environ(),
		"ONCEFLOW_WEBHOOK_SECRET="+webhookSecret,
		"ONCEFLOW_SUBSCRIBER_TOKEN_SECRET="+random(t, 32),
		// Small enough for the limits test to reach, large enough for
		// the feed tests.
		"ONCEFLOW_FEED_LIMIT_PER_SUBSCRIBER=30/1m",
	)
	logs, err := os.Create(filepath.Join(dir, "dev.log"))
	require.NoError(t, err)
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("onceflow dev's log:\n%s", b)
		}
	})

	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := apiLine.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-urls:
	case <-time.After(3 * time.Minute):
		b, _ := os.ReadFile(logs.Name())
		t.Fatalf("onceflow dev did not print its API's address in 3 minutes; its log:\n%s", b)
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 200*time.Millisecond, "onceflow dev's /healthz")
	return []string{
		"ONCEFLOW_URL=" + url,
		"ONCEFLOW_TEST_TOKEN=" + token,
		"ONCEFLOW_WEBHOOK_SECRET=" + webhookSecret,
	}
}

func random(t *testing.T, n int) string {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(b)
}

// TestReadmeExampleIsTheCompiledOne keeps the README's example the one
// that tsc compiles (examples/quickstart.ts).
func TestReadmeExampleIsTheCompiledOne(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	example, err := os.ReadFile("examples/quickstart.ts")
	require.NoError(t, err)
	code := string(example)
	code = code[strings.Index(code, "import "):]
	require.Contains(t, string(readme), "```ts\n"+code+"```", "README.md's example differs from examples/quickstart.ts")
}
