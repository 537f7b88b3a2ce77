//go:build linux

package main

import (
	"fmt"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/internal/chaos"
)

// checkBroadcastFlags refuses broadcast flags a run could not use, naming
// the flag.
func checkBroadcastFlags(cfg chaos.Config) error {
	switch {
	case cfg.Broadcasts < 0:
		return fmt.Errorf("--broadcasts %d is negative", cfg.Broadcasts)
	case cfg.Broadcasts > 0 && (cfg.BroadcastRecipients < 1 || cfg.BroadcastRecipients > onceflow.MaxRecipients):
		return fmt.Errorf("--broadcast-recipients %d is not between 1 and %d", cfg.BroadcastRecipients, onceflow.MaxRecipients)
	case cfg.Broadcasts > 0 && (cfg.BroadcastChunk < 1 || cfg.BroadcastChunk > broadcast.MaxChunkSize):
		return fmt.Errorf("--broadcast-chunk %d is not between 1 and %d", cfg.BroadcastChunk, broadcast.MaxChunkSize)
	}
	return nil
}
