//go:build nodev

package main

import (
	"context"
	"errors"
)

// The production image is built with -tags nodev: it carries neither the
// embedded Temporal server nor the Web UI, which only `onceflow dev` needs.
func (a *app) dev(context.Context, []string) error {
	return errors.New("this onceflow binary was built without the dev stack (-tags nodev); run `go run ./cmd/onceflow dev` from the source tree, or point the worker at a Temporal server")
}
