//go:build linux

package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is a child process that can be killed and started again, and
// that says how it ended, so that a kill is counted only when the process
// died of it.
type process struct {
	name string
	log  string
	args []string

	mu     sync.Mutex
	env    []string
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *process) start(env []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if env != nil {
		p.env = env
	}
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	// The child wrote the log through its own copy of the descriptor:
	// closing the harness's copy has nothing of it to flush.
	go func() { _ = cmd.Wait(); _ = out.Close(); close(exited) }()
	return nil
}

// pid is the running process's ID, 0 when none runs.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// running reports whether the process was started and has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// errNotRunning: there was no process to stop.
var errNotRunning = errors.New("not running")

// stop sends sig and waits for the process to exit, for up to 60s, after
// which it is killed. It returns how the process ended: by sig (for
// SIGKILL, the kill took effect), or otherwise (err says how).
func (p *process) stop(sig syscall.Signal) (bySignal bool, err error) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return false, errNotRunning
	}
	if err := cmd.Process.Signal(sig); err != nil {
		<-exited
		return false, fmt.Errorf("%s had exited before %v: %s", p.name, sig, cmd.ProcessState)
	}
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return false, fmt.Errorf("%s did not exit within 60s of %v; killed", p.name, sig)
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if sig == syscall.SIGKILL {
		if ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true, nil
		}
		return false, fmt.Errorf("%s ended otherwise than by SIGKILL: %s", p.name, cmd.ProcessState)
	}
	return ws.Signaled() && ws.Signal() == sig, nil
}
