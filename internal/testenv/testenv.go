// Package testenv starts the real servers that Onceflow's tests run against:
// a redis-server process per test binary and an embedded Temporal server.
// It fails the test, never skips it, when a server cannot be started.
package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server child process listening on loopback.
type Redis struct {
	Addr string
	Dir  string
	cmd  *exec.Cmd
	port int
}

// StartRedis starts redis-server on a free loopback port with its files in
// dir, append-only file on (fsync every second, as in production; a clean
// stop flushes it) so that a restart keeps what was written. Stop it
// with Stop.
func StartRedis(dir string) (*Redis, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis-server is not installed (apt-get install -y redis-server): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Redis{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, port: port}
	return r, r.start()
}

func (r *Redis) start() error {
	r.cmd = exec.Command("redis-server",
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port),
		"--dir", r.Dir, "--save", "", "--appendonly", "yes", "--appendfsync", "everysec")
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	r.cmd.Stderr = r.cmd.Stdout
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var last string
		for sc.Scan() {
			last = sc.Text()
			if strings.Contains(last, "Ready to accept connections") {
				ready <- nil
				for sc.Scan() {
				}
				return
			}
		}
		ready <- fmt.Errorf("redis-server exited before it was ready: %s", last)
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = r.cmd.Wait()
		}
		return err
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		return fmt.Errorf("redis-server on %s was not ready within 10s", r.Addr)
	}
}

// Stop ends the server and waits for it to exit.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Restart stops the server and starts it again on the same port and files.
func (r *Redis) Restart() error {
	r.Stop()
	return r.start()
}

// Client returns a go-redis client for the server; the test closes it.
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping redis-server at %s: %v", r.Addr, err)
	}
	return c
}

// MustStartRedis is StartRedis for a TestMain: it exits the test binary
// with a message when the server cannot start.
func MustStartRedis() *Redis {
	dir, err := os.MkdirTemp("", "onceflow-redis-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r, err := StartRedis(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return r
}

// Cleanup stops the server and removes its files.
func (r *Redis) Cleanup() {
	r.Stop()
	_ = os.RemoveAll(filepath.Clean(r.Dir))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
