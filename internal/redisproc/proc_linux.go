package redisproc

import "syscall"

// childAttrs makes the kernel stop redis-server if its parent dies, so a
// killed `onceflow dev` leaves no server behind.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
