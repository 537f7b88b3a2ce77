//go:build !linux

package redisproc

import "syscall"

func childAttrs() *syscall.SysProcAttr { return nil }
