// Package worker builds and runs an Onceflow worker: it registers the
// notification workflow and the Deliver activity on a task queue, wires the
// dedup store and the providers, and stops gracefully. Workers share nothing
// but Temporal and Redis, so any number of them can poll one task queue.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/digest"
	"github.com/onceflow/onceflow/digest/window"
	"github.com/onceflow/onceflow/redisconn"
	"github.com/onceflow/onceflow/workflows"
)

// New returns a worker on taskQueue that runs every product's workflows
// under policy and the given activities. Start or Run it. Each product is
// one registration here.
func New(tc client.Client, taskQueue string, policy workflows.Policy, acts *ActivitySet) sdkworker.Worker {
	w := sdkworker.New(tc, taskQueue, sdkworker.Options{
		// Let in-flight sends finish and commit before the process exits.
		WorkerStopTimeout: policy.AttemptTimeout,
	})
	// Notifications: their workflow, the delivery core's activities.
	w.RegisterWorkflowWithOptions(workflows.New(policy).Run, workflow.RegisterOptions{Name: workflows.Name})
	w.RegisterActivity(acts.Deliveries)
	w.RegisterActivity(acts.Preferences)
	// Broadcasts: their workflow and DeliverChunk.
	w.RegisterWorkflowWithOptions(broadcast.NewWorkflow(policy).Run, workflow.RegisterOptions{Name: broadcast.WorkflowName})
	w.RegisterActivity(acts.Broadcasts)
	// Digests: their workflow and the JoinDigest activity.
	w.RegisterWorkflowWithOptions(window.New(policy).Run, workflow.RegisterOptions{Name: digest.WorkflowName})
	w.RegisterActivity(digest.NewActivities(tc))
	return w
}

// Run runs a worker until ctx is done, then stops it gracefully. It refuses
// to start when Redis is unreachable or when the dedup window does not
// outlive the namespace's retention.
func Run(ctx context.Context, tc client.Client, namespace string, cfg Config, logger *slog.Logger) error {
	acts, rdb, err := Activities(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = rdb.Close() }()
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := redisconn.Ping(pingCtx, rdb); err != nil {
		return fmt.Errorf("redis at %s (%s): %w", cfg.Redacted(), redisconn.EnvURL, err)
	}
	// Redis is the ledger: one that may evict records is refused, one that
	// may lose them on a restart is warned about.
	warnings, err := dedup.CheckDurability(pingCtx, rdb, cfg.WaitReplicas)
	if err != nil {
		return fmt.Errorf("redis at %s (%s): %w", cfg.Redacted(), redisconn.EnvURL, err)
	}
	for _, w := range warnings {
		logger.Warn(w, "redis", cfg.Redacted())
	}
	if err := checkRetention(pingCtx, tc, namespace, cfg.DedupWindow, cfg.Policy.GiveUpAfter); err != nil {
		return err
	}
	if err := RegisterSearchAttributes(pingCtx, tc, namespace); err != nil {
		return err
	}
	if cfg.WorkflowCache > 0 {
		// A process-wide SDK setting; Run owns the process's workers.
		sdkworker.SetStickyWorkflowCacheSize(cfg.WorkflowCache)
	}
	stopEvents, err := StartEvents(ctx, cfg, rdb, logger)
	if err != nil {
		return err
	}
	defer stopEvents()
	w := New(tc, cfg.TaskQueue, cfg.Policy, acts)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %q: %w", cfg.TaskQueue, err)
	}
	var channels []string
	for _, c := range onceflow.Channels {
		if _, ok := acts.Deliveries.Providers[c]; ok || (c == onceflow.InApp && acts.Deliveries.Feed != nil) {
			channels = append(channels, string(c))
		}
	}
	logger.Info("Worker started", "task_queue", cfg.TaskQueue, "namespace", namespace, "redis", cfg.Redacted(), "channels", channels)
	<-ctx.Done()
	logger.Info("Worker stopping; in-flight deliveries may take up to the attempt timeout", "attempt_timeout", cfg.Policy.AttemptTimeout)
	w.Stop()
	logger.Info("Worker stopped")
	return nil
}
