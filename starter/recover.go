package starter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/workflows"
)

// RecoverSuffix ends the key of a notification that re-sends another's
// failed deliveries (RecoverKey).
const RecoverSuffix = ".recover"

// RecoverKey is the key of the notification that re-sends the failed
// deliveries of the notification with key: key + ".recover", so that a
// second recovery of the same notification joins the first instead of
// sending again. A key too long for that keeps its first bytes and a hash
// of the whole key before the suffix, within onceflow.MaxKeyLength: still
// one key per original. A recovery that failed in turn is recovered as
// key.recover.recover, and so on.
func RecoverKey(key string) string {
	if len(key)+len(RecoverSuffix) <= onceflow.MaxKeyLength {
		return key + RecoverSuffix
	}
	sum := sha256.Sum256([]byte(key))
	hash := "-" + hex.EncodeToString(sum[:8])
	return key[:onceflow.MaxKeyLength-len(RecoverSuffix)-len(hash)] + hash + RecoverSuffix
}

// RecoverOptions selects the deliveries Recover re-sends.
type RecoverOptions struct {
	// Since: notifications that closed at or after it.
	Since time.Time `json:"since"`
	// Channel, when set, re-sends only deliveries on that channel.
	Channel onceflow.Channel `json:"channel,omitempty"`
	// Status is the status of the deliveries to re-send: "failed" (the
	// default and the only one: ambiguous deliveries may have reached
	// their recipients, and are never re-sent).
	Status onceflow.Status `json:"status,omitempty"`
}

// Recovered is a delivery Recover re-sent.
type Recovered struct {
	Key        string           `json:"key"`
	DeliveryID string           `json:"delivery_id"`
	Channel    onceflow.Channel `json:"channel"`
	// NewKey is the key of the notification that re-sent it; NewDeliveryID
	// its delivery ID there.
	NewKey        string `json:"new_key"`
	NewDeliveryID string `json:"new_delivery_id"`
}

// Skipped is a delivery Recover found and did not re-send, and why.
type Skipped struct {
	Key        string           `json:"key"`
	DeliveryID string           `json:"delivery_id"`
	Channel    onceflow.Channel `json:"channel"`
	Status     onceflow.Status  `json:"status"`
	Reason     string           `json:"reason"`
	// NewKey is the recovery notification that already re-sent it, if any.
	NewKey string `json:"new_key,omitempty"`
}

// RecoverReport is what Recover did.
type RecoverReport struct {
	Resent  []Recovered `json:"resent"`
	Skipped []Skipped   `json:"skipped"`
}

// Recover re-sends the deliveries of the client's tenant's notifications
// that failed for good (refused permanently, or out of retries) in
// notifications that closed since opts.Since, once the operator has fixed
// the cause: each notification's failed deliveries go out as one new
// notification with the same content, keyed RecoverKey(key). A
// notification already recovered is skipped, and a second run finds the
// recovery notification already there, so that running Recover twice sends
// nothing twice. Ambiguous deliveries are never re-sent.
//
// The notifications are found through their search attributes
// (OnceflowStatus failed or ambiguous, since an ambiguous delivery hides a
// failed one in the notification's status) and the visibility store's
// CloseTime; their content is read with workflows.NotificationQuery, which
// a worker answers.
func (c *Client) Recover(ctx context.Context, opts RecoverOptions) (RecoverReport, error) {
	report := RecoverReport{Resent: []Recovered{}, Skipped: []Skipped{}}
	if err := onceflow.ValidateTenant(c.tenant); err != nil {
		return report, err
	}
	if err := opts.Validate(); err != nil {
		return report, err
	}
	query := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Completed' AND CloseTime >= '%s' AND %s IN ('%s', '%s')",
		workflows.Name, opts.Since.UTC().Format(time.RFC3339Nano), workflows.StatusAttribute.GetName(), onceflow.Failed, onceflow.Ambiguous)
	seen := map[string]bool{}
	var token []byte
	for {
		page, err := c.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 100})
		if err != nil {
			return report, fmt.Errorf("list failed notifications since %s: %w", opts.Since.Format(time.RFC3339), err)
		}
		for _, ex := range page.GetExecutions() {
			id := ex.GetExecution().GetWorkflowId()
			key, ok := c.ownKey(id)
			if !ok || seen[id] {
				continue
			}
			seen[id] = true
			if err := c.recoverOne(ctx, opts, key, ex.GetExecution().GetRunId(), &report); err != nil {
				return report, err
			}
		}
		if token = page.GetNextPageToken(); len(token) == 0 {
			return report, nil
		}
	}
}

// Validate checks the options and fills in the default status; an error
// is a *onceflow.ValidationError naming the option.
func (o *RecoverOptions) Validate() error {
	if o.Since.IsZero() {
		return &onceflow.ValidationError{Field: "since", Reason: "is required: recover notifications that closed since when?"}
	}
	if o.Status == "" {
		o.Status = onceflow.Failed
	}
	if o.Status != onceflow.Failed {
		return &onceflow.ValidationError{Field: "status", Reason: fmt.Sprintf("is %q; only %q deliveries are re-sent (ambiguous ones may have reached their recipients)", o.Status, onceflow.Failed)}
	}
	if o.Channel != "" && !slices.Contains(onceflow.Channels, o.Channel) {
		return &onceflow.ValidationError{Field: "channel", Reason: fmt.Sprintf("%q is not a channel", o.Channel)}
	}
	return nil
}

// ownKey is the key of the notification with workflow ID id when it is the
// client's tenant's; another tenant's is not reported at all.
func (c *Client) ownKey(id string) (string, bool) {
	scoped, ok := strings.CutPrefix(id, workflows.ID(""))
	if !ok {
		return "", false
	}
	tenant, key, found := strings.Cut(scoped, "@")
	if !found {
		tenant, key = "", scoped
	}
	return key, tenant == c.tenant
}

// recoverOne re-sends the failed deliveries of the run runID of the
// notification with key.
func (c *Client) recoverOne(ctx context.Context, opts RecoverOptions, key, runID string, report *RecoverReport) error {
	id := c.workflowID(key)
	var res onceflow.Result
	if err := c.tc.GetWorkflow(ctx, id, runID).Get(ctx, &res); err != nil {
		return fmt.Errorf("read the result of notification %q: %w", key, err)
	}
	var failed []int
	for i, d := range res.Deliveries {
		if opts.Channel != "" && d.Channel != opts.Channel {
			continue
		}
		switch st := d.LastStep().Status; st {
		case onceflow.Failed:
			failed = append(failed, i)
		case onceflow.Ambiguous:
			report.Skipped = append(report.Skipped, Skipped{Key: key, DeliveryID: d.DeliveryID, Channel: d.Channel, Status: st,
				Reason: "ambiguous: it may have reached its recipient; recover never re-sends it"})
		}
	}
	if len(failed) == 0 {
		return nil
	}
	newKey := RecoverKey(key)
	skipAll := func(reason string) {
		for _, i := range failed {
			d := res.Deliveries[i]
			report.Skipped = append(report.Skipped, Skipped{Key: key, DeliveryID: d.DeliveryID, Channel: d.Channel, Status: onceflow.Failed, Reason: reason, NewKey: newKey})
		}
	}
	_, err := c.tc.DescribeWorkflowExecution(ctx, c.workflowID(newKey), "")
	var nf *serviceerror.NotFound
	switch {
	case err == nil:
		skipAll("already re-sent by an earlier recover, as notification " + newKey)
		return nil
	case !errors.As(err, &nf):
		return fmt.Errorf("look for the recovery of notification %q: %w", key, err)
	}
	q, err := c.tc.QueryWorkflow(ctx, id, runID, workflows.NotificationQuery)
	if err != nil {
		// A worker older than the query cannot tell the content.
		skipAll("its content could not be read (" + err.Error() + "); upgrade the workers and run recover again")
		return nil
	}
	var n onceflow.Notification
	if err := q.Get(&n); err != nil {
		return fmt.Errorf("read the content of notification %q: %w", key, err)
	}
	if len(n.Deliveries) != len(res.Deliveries) {
		return fmt.Errorf("notification %q: its result has %d deliveries and its payload %d", key, len(res.Deliveries), len(n.Deliveries))
	}
	re := n
	re.Key, re.Tenant, re.SendAt, re.Deliveries = newKey, "", nil, nil
	for _, i := range failed {
		re.Deliveries = append(re.Deliveries, n.Deliveries[i])
	}
	if _, err := c.Send(ctx, re); err != nil {
		return fmt.Errorf("re-send the failed deliveries of notification %q as %q: %w", key, newKey, err)
	}
	for _, i := range failed {
		d := res.Deliveries[i]
		report.Resent = append(report.Resent, Recovered{Key: key, DeliveryID: d.DeliveryID, Channel: d.Channel,
			NewKey: newKey, NewDeliveryID: n.Deliveries[i].ID(c.scopedKey(newKey))})
	}
	return nil
}
