// Package pgproc runs a PostgreSQL server child process on loopback, in a
// fresh data directory of its own, for tests and benchmarks of the dev
// stack on PostgreSQL.
//
// PostgreSQL refuses to run as root: when this process is root, initdb and
// the server run as the "postgres" user (Debian's package creates it), in a
// directory under os.TempDir() that this user owns.
package pgproc

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/onceflow/onceflow/internal/freeport"
	"github.com/onceflow/onceflow/internal/procwait"
)

// User is the superuser initdb creates; it logs in with a password.
const User = "onceflow"

// binDir finds initdb and postgres: on the PATH, or in Debian's
// /usr/lib/postgresql/<version>/bin, the newest version first.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil {
			if _, err := os.Stat(filepath.Join(filepath.Dir(p), "postgres")); err == nil {
				return filepath.Dir(p), nil
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL's initdb is neither on the PATH nor in /usr/lib/postgresql/*/bin (apt-get install -y postgresql)")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Available reports whether PostgreSQL's server programs are installed.
func Available() bool {
	_, err := binDir()
	return err == nil
}

// Server is a PostgreSQL server child process.
type Server struct {
	// Addr is host:port on loopback.
	Addr     string
	password string
	dir      string
	cmd      *exec.Cmd
}

// Start initialises a cluster in a new temporary directory and starts
// postgres on a free loopback port, with password (SCRAM) authentication
// for User. Extra arguments are server settings, name=value, such as
// "synchronous_commit=off" or "max_connections=200".
func Start(extra ...string) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "onceflow-pg-")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL directory: %w", err)
	}
	s := &Server{dir: dir}
	if err := s.start(bin, cred, extra); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// credential is whom initdb and postgres run as: nil (this process's user)
// unless that is root.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root, and there is no user \"postgres\" to run it as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *Server) start(bin string, cred *syscall.Credential, extra []string) error {
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return err
	}
	s.password = hex.EncodeToString(pw)
	pwFile := filepath.Join(s.dir, "pwfile")
	if err := os.WriteFile(pwFile, []byte(s.password+"\n"), 0o600); err != nil {
		return err
	}
	if cred != nil {
		for _, p := range []string{s.dir, pwFile} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("hand %s to the postgres user: %w", p, err)
			}
		}
	}
	data := filepath.Join(s.dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", User, "--pwfile", pwFile,
		"--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C", "--no-sync")
	initdb.Dir, initdb.SysProcAttr = s.dir, childAttrs(cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, lastLine(string(out)))
	}
	_ = os.Remove(pwFile)

	port, err := freeport.Get()
	if err != nil {
		return fmt.Errorf("find a free port for postgres: %w", err)
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", s.dir}
	for _, e := range extra {
		args = append(args, "-c", e)
	}
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	s.cmd.Dir, s.cmd.SysProcAttr = s.dir, childAttrs(cred)
	out, err := s.cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := procwait.Start(s.cmd, out, "postgres on "+s.Addr, "database system is ready to accept connections", 30*time.Second); err != nil {
		s.cmd = nil
		return err
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// URL is the postgres:// URL of database db, with User's password.
func (s *Server) URL(db string) string {
	return (&url.URL{Scheme: "postgres", User: url.UserPassword(User, s.password), Host: s.Addr, Path: "/" + db}).String()
}

// PID is the postmaster's process ID; the backends are its children.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Password is User's password, which tests look for where it must not be.
func (s *Server) Password() string { return s.password }

// Stop shuts the server down (fast shutdown: it rolls back open
// transactions and disconnects clients), waits for it and removes its
// directory.
func (s *Server) Stop() {
	if s.cmd != nil {
		exited := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(exited) }()
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-exited
		}
		s.cmd = nil
	}
	_ = os.RemoveAll(s.dir)
}
