// Package redisproc runs a redis-server child process on loopback with its
// append-only file in a directory, for `onceflow dev` and for tests, and
// replicas of it.
package redisproc

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/internal/procwait"
)

// Available reports whether redis-server is on the PATH.
func Available() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// Server is a redis-server child process.
type Server struct {
	// Addr is host:port on loopback.
	Addr string
	// Dir holds the append-only file.
	Dir   string
	port  int
	args  []string
	ready string // the log line that says the server is ready
	opts  Options
	cmd   *exec.Cmd
}

// Options secure a server; the zero value is what Start runs: plain TCP,
// no password.
type Options struct {
	// TLS, if set, makes the server serve TLS only (no plain TCP port).
	TLS *TLS
	// Password, if not "", is required of clients (--requirepass) and
	// given to a primary by its replicas (--masterauth).
	Password string
}

// args are the directives that secure a server listening on port.
func (o Options) args(port int) []string {
	var args []string
	if o.TLS != nil {
		args = o.TLS.serverArgs(strconv.Itoa(port))
	}
	if o.Password != "" {
		args = append(args, "--requirepass", o.Password, "--masterauth", o.Password)
	}
	return args
}

// Start starts redis-server on 127.0.0.1:port (0 picks a free port) with
// its files in dir and the append-only file on, fsynced every second as in
// production; a clean stop flushes it, so a restart keeps what was written.
// Extra arguments are configuration directives that override those, such as
// "--appendonly", "no" or "--maxmemory-policy", "allkeys-lru".
func Start(dir string, port int, extra ...string) (*Server, error) {
	return start(dir, port, Options{}, "Ready to accept connections", extra)
}

// StartWith starts redis-server as Start does, secured by opts.
func StartWith(dir string, port int, opts Options, extra ...string) (*Server, error) {
	return start(dir, port, opts, "Ready to accept connections", extra)
}

// StartReplica starts a replica of s (--replicaof) like Start, secured as
// s is, and returns once it has synchronised with s, so that s counts it as
// connected.
func (s *Server) StartReplica(dir string, extra ...string) (*Server, error) {
	args := append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(s.port)}, extra...)
	return start(dir, 0, s.opts, "MASTER <-> REPLICA sync: Finished with success", args)
}

func start(dir string, port int, opts Options, ready string, extra []string) (*Server, error) {
	if !Available() {
		return nil, fmt.Errorf("redis-server is not on the PATH (apt-get install -y redis-server)")
	}
	if port == 0 {
		var err error
		if port, err = freeport.Get(); err != nil {
			return nil, fmt.Errorf("find a free port for redis-server: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("redis-server directory: %w", err)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, port: port, args: extra, ready: ready, opts: opts}
	return s, s.start()
}

// URL is the redis:// URL of database 0, rediss:// and with the password
// when the server has them.
func (s *Server) URL() string {
	return scheme("redis", s.opts) + "://" + auth(s.opts.Password) + s.Addr + "/0"
}

// Client is a client of the server, with its password and, if it serves
// TLS, trusting its CA only; it does not retry.
func (s *Server) Client() (*redis.Client, error) {
	o := &redis.Options{Addr: s.Addr, Password: s.opts.Password, MaxRetries: -1}
	if s.opts.TLS != nil {
		var err error
		if o.TLSConfig, err = s.opts.TLS.ClientConfig(); err != nil {
			return nil, err
		}
	}
	return redis.NewClient(o), nil
}

func scheme(base string, opts Options) string {
	if opts.TLS != nil {
		return base + "s"
	}
	return base
}

func auth(password string) string {
	if password == "" {
		return ""
	}
	return ":" + url.QueryEscape(password) + "@"
}

func (s *Server) start() error {
	args := append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--dir", s.Dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
		// A replica syncs at once instead of after the default 5s.
		"--repl-diskless-sync-delay", "0",
	}, s.opts.args(s.port)...)
	args = append(args, s.args...)
	s.cmd = exec.Command("redis-server", args...)
	s.cmd.SysProcAttr = childAttrs()
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := procwait.Start(s.cmd, out, "redis-server on "+s.Addr, s.ready, 10*time.Second); err != nil {
		s.cmd = nil
		return err
	}
	return nil
}

// Stop asks the server to shut down (it flushes its append-only file) and
// waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	// Redis refuses a shutdown it cannot do cleanly yet, and does not retry
	// it: a replica writes its first append-only file just after it syncs
	// ("Writing initial AOF, can't exit"). Ask again until it exits, for up
	// to 30s; SIGTERM, unlike a second SIGINT, never cuts a shutdown under
	// way short.
	for range 120 {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			s.cmd = nil
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
	_ = s.cmd.Process.Kill()
	<-exited
	s.cmd = nil
}

// Kill ends the server with SIGKILL, as a crash or the OOM killer would: it
// gets no chance to flush or fsync anything. With appendfsync everysec Redis
// writes every change to the append-only file before it replies, postponing
// that by up to KillSafeAfter only while an earlier fsync is still under way;
// so what was acknowledged KillSafeAfter before the kill survives it (a crash
// of the machine may lose what was not fsynced yet, about the last second).
// Restart starts it again.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// KillSafeAfter is how long after Redis acknowledged a write Kill can no
// longer lose it: the longest Redis postpones writing its append-only file.
const KillSafeAfter = 2 * time.Second

// Restart stops the server and starts it again on the same port and files.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}
