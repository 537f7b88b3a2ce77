package devstack

import "go.temporal.io/server/common/dynamicconfig"

// devDynamicConfig tunes the embedded server for a person watching it.
func devDynamicConfig() map[dynamicconfig.Key]any {
	return map[dynamicconfig.Key]any{
		// Custom search attributes added at start are visible at once.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key():      true,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
	}
}
