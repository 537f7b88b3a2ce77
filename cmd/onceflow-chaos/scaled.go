//go:build linux

package main

import (
	"flag"
	"fmt"

	"github.com/onceflow/onceflow/internal/chaos"
)

// scaledFlags registers the flags of the scaled-out topology (chaos.Scaled)
// on fs. The returned func, called after parsing, settles what --scaled
// changes in the other flags: the single-server Redis faults default to
// none there, and asked for explicitly they are an error, naming the flag.
func scaledFlags(fs *flag.FlagSet, cfg *chaos.Config) func() error {
	s := &cfg.Scaled
	fs.BoolVar(&s.On, "scaled", false, "run the scaled-out topology: Temporal on PostgreSQL with --history-shards shards, a Redis Cluster of 3 primaries with a replica each, --workers worker and --apis API processes; notifications are started through the APIs")
	fs.IntVar(&s.HistoryShards, "history-shards", 4, "with --scaled: the Temporal server's history shards")
	fs.IntVar(&s.APIs, "apis", 2, "with --scaled: `onceflow api` processes, each on its own port")
	fs.IntVar(&s.PrimaryKills, "redis-primary-kills", 1, "with --scaled: SIGKILLs of a Redis primary during the run (its replica takes over; the node comes back as a replica)")
	fs.IntVar(&s.WaitReplicas, "wait-replicas", 1, "with --scaled: the workers' ONCEFLOW_REDIS_WAIT_REPLICAS (0 or 1)")
	return func() error {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !s.On {
			for _, name := range []string{"history-shards", "apis", "redis-primary-kills", "wait-replicas"} {
				if set[name] {
					return fmt.Errorf("--%s needs --scaled", name)
				}
			}
			s.PrimaryKills = 0
			return nil
		}
		for _, name := range []string{"redis-restarts", "redis-kills"} {
			if set[name] {
				return fmt.Errorf("--%s acts on the single redis-server; with --scaled, Redis's fault is --redis-primary-kills", name)
			}
		}
		cfg.RedisRestarts, cfg.RedisKills = 0, 0
		if s.HistoryShards < 1 || s.APIs < 1 || s.PrimaryKills < 0 || s.WaitReplicas < 0 || s.WaitReplicas > 1 {
			return fmt.Errorf("--history-shards and --apis must be positive, --redis-primary-kills not negative, --wait-replicas 0 or 1")
		}
		return nil
	}
}
