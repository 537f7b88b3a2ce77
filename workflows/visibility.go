package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
)

// The search attributes every notification carries, for finding it in the
// Temporal Web UI and the visibility API, e.g. OnceflowStatus="failed".
var (
	// KeyAttribute is the notification's idempotency key in its tenant's
	// scope (onceflow.ScopedKey), as in its workflow ID.
	KeyAttribute = temporal.NewSearchAttributeKeyKeyword("OnceflowKey")
	// ChannelsAttribute lists the channels it is delivered over.
	ChannelsAttribute = temporal.NewSearchAttributeKeyKeywordList("OnceflowChannels")
	// StatusAttribute is onceflow.Result.Status: pending until every
	// delivery has settled, then the final status.
	StatusAttribute = temporal.NewSearchAttributeKeyKeyword("OnceflowStatus")
)

// SearchAttributeTypes is what a namespace must have registered before
// workers run; worker.RegisterSearchAttributes registers them.
var SearchAttributeTypes = map[string]enumspb.IndexedValueType{
	KeyAttribute.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	ChannelsAttribute.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
	StatusAttribute.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// SearchAttributes are a notification's attributes at its start.
func SearchAttributes(n onceflow.Notification) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(startAttributes(n)...)
}

func startAttributes(n onceflow.Notification) []temporal.SearchAttributeUpdate {
	var channels []string
	for _, c := range n.ChannelSet() {
		channels = append(channels, string(c))
	}
	return []temporal.SearchAttributeUpdate{
		KeyAttribute.ValueSet(onceflow.ScopedKey(n.Tenant, n.Key)),
		ChannelsAttribute.ValueSet(channels),
		StatusAttribute.ValueSet(string(onceflow.Pending)),
	}
}
