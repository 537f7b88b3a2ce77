// Package redisproc runs a redis-server child process on loopback with its
// append-only file in a directory, for `onceflow dev` and for tests.
package redisproc

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
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
	Dir  string
	port int
	cmd  *exec.Cmd
}

// Start starts redis-server on 127.0.0.1:port (0 picks a free port) with
// its files in dir and the append-only file on, fsynced every second as in
// production; a clean stop flushes it, so a restart keeps what was written.
func Start(dir string, port int) (*Server, error) {
	if !Available() {
		return nil, fmt.Errorf("redis-server is not on the PATH (apt-get install -y redis-server)")
	}
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port for redis-server: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("redis-server directory: %w", err)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, port: port}
	return s, s.start()
}

// URL is the redis:// URL of database 0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

func (s *Server) start() error {
	s.cmd = exec.Command("redis-server",
		"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--dir", s.Dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec")
	s.cmd.SysProcAttr = childAttrs()
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
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
		ready <- fmt.Errorf("redis-server on %s exited before it was ready: %s", s.Addr, last)
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = s.cmd.Wait()
			s.cmd = nil
		}
		return err
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
		return fmt.Errorf("redis-server on %s was not ready within 10s", s.Addr)
	}
}

// Stop asks the server to shut down (it flushes its append-only file) and
// waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart stops the server and starts it again on the same port and files.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}
