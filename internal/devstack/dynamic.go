package devstack

import (
	"time"

	"go.temporal.io/server/common/dynamicconfig"
)

// devDynamicConfig tunes the embedded server for a person watching it.
func devDynamicConfig() map[dynamicconfig.Key]any {
	return map[dynamicconfig.Key]any{
		// Not forced: with it, every read of the search attribute types
		// (each start that sets Onceflow's attributes, each upsert, each
		// visibility write) re-read the cluster metadata from the database,
		// 5% of the CPU in the throughput benchmark (pprof -diff_base,
		// searchattribute.(*managerImpl).refreshCache). On SQL visibility
		// (SQLite, PostgreSQL) a custom attribute is an alias in the
		// namespace's config, not cluster metadata, so the attributes the
		// workers register at start are usable at once without it.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key():      false,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// One partition per task queue (default four): with few pollers a
		// task can land in a partition nobody polls and wait to be
		// forwarded. Measured: p99 start-to-receiver from another process
		// ~92ms with four, ~21ms with one.
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): 1,
		// The history service reads its one shard's transfer queue at most
		// 20 times a second by default, so a workflow started right after
		// another finished waited about 50ms for its first workflow task.
		dynamicconfig.TransferProcessorMaxPollRPS.Key(): 1000,
		// A client waiting for a result long-polls the history service,
		// which wakes it through a one-slot channel that drops a
		// notification while the slot is full (events.NotifierImpl). Under
		// CPU load two notifications can arrive before the waiter runs, and
		// when the dropped one is the close the wait sleeps out the whole
		// long poll (20s by default) although the workflow finished in
		// milliseconds: 2-3 in 100 one-at-a-time waits on this loaded
		// 2-core machine, which made the benchmark's one-at-a-time rows
		// bimodal. A shorter poll bounds that stall; a long wait re-polls
		// once a second instead of every 20s.
		dynamicconfig.HistoryLongPollExpirationInterval.Key(): time.Second,
	}
}
