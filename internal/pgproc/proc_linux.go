package pgproc

import "syscall"

// childAttrs runs a child as cred (nil: as this process) and makes the
// kernel stop it if its parent dies, so a killed test leaves no server
// behind. SIGINT is PostgreSQL's fast shutdown. Go sets the parent-death
// signal after switching credentials, which would otherwise clear it.
func childAttrs(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT, Credential: cred}
}
