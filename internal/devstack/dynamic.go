package devstack

import "go.temporal.io/server/common/dynamicconfig"

// devDynamicConfig tunes the embedded server for a person watching it.
func devDynamicConfig() map[dynamicconfig.Key]any {
	return map[dynamicconfig.Key]any{
		// Custom search attributes added at start are visible at once.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key():      true,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// One partition per task queue: with the default four and a single
		// poller, a task often lands in a partition nobody polls and waits
		// to be forwarded.
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): 1,
		// The history service reads its one shard's transfer queue at most
		// 20 times a second by default, so a workflow started right after
		// another finished waited about 50ms for its first workflow task.
		dynamicconfig.TransferProcessorMaxPollRPS.Key(): 1000,
	}
}
