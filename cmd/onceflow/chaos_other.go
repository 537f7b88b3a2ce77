//go:build !linux

package main

import (
	"context"
	"errors"
)

var errInvariants = errors.New("an invariant failed; see the report")

func (a *app) chaos(context.Context, []string) error {
	return errors.New("onceflow chaos runs on Linux only")
}
