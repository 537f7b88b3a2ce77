package worker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/onceflow/onceflow/workflows"
)

// RegisterSearchAttributes adds to namespace the search attributes that
// notifications carry, unless it has them already. Workers need them: a
// workflow that sets an unregistered attribute cannot make progress.
func RegisterSearchAttributes(ctx context.Context, tc client.Client, namespace string) error {
	have, err := tc.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %q: %w", namespace, err)
	}
	missing := make(map[string]enumspb.IndexedValueType)
	for name, typ := range workflows.SearchAttributeTypes {
		got, ok := have.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case got != typ:
			return fmt.Errorf("namespace %q has search attribute %s of type %v; Onceflow needs %v", namespace, name, got, typ)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = tc.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register search attributes %v in namespace %q (on Temporal Cloud, add them with tcld or the Cloud UI): %w", slices.Sorted(maps.Keys(missing)), namespace, err)
	}
	return nil
}

// checkRetention refuses a dedup window that a delivery's records could
// outlast: a notification's workflow may close up to giveUp after its first
// claim and is kept for the namespace's retention after that, so a key
// re-sent before the workflow is deleted joins it, and one re-sent after
// must still find the records.
func checkRetention(ctx context.Context, tc client.Client, namespace string, window, giveUp time.Duration) error {
	ns, err := tc.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("describe namespace %q: %w", namespace, err)
	}
	return windowCoversRetention(namespace, window, ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(), giveUp)
}

func windowCoversRetention(namespace string, window, retention, giveUp time.Duration) error {
	if retention > 0 && window <= retention+giveUp {
		return fmt.Errorf("%s=%v must be longer than namespace %q's retention of %v plus %s=%v, or a key re-sent after its workflow is deleted would be delivered again",
			EnvDedupWindow, window, namespace, retention, EnvGiveUpAfter, giveUp)
	}
	return nil
}
