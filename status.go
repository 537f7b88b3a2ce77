package onceflow

import "time"

// Status is where one delivery stands.
type Status string

// The states of a delivery. Pending and Retrying are transient; the others
// are final.
const (
	// Pending: not attempted yet, or waiting for send_at.
	Pending Status = "pending"
	// Retrying: an attempt failed and another is scheduled.
	Retrying Status = "retrying"
	// Delivered: the provider acknowledged this delivery.
	Delivered Status = "delivered"
	// Suppressed: the dedup record shows it was already delivered (by an
	// earlier run, attempt or start with the same key); nothing was sent.
	Suppressed Status = "suppressed"
	// Failed: the provider refused it permanently, or retries ran out.
	Failed Status = "failed"
	// Ambiguous: it may have been delivered more than once, or not at all;
	// Reason says which and why.
	Ambiguous Status = "ambiguous"
	// Cancelled: the notification was cancelled before this was delivered.
	Cancelled Status = "cancelled"
	// Skipped: not sent because the subscriber opted out of the
	// notification's category on this channel; Reason says so.
	Skipped Status = "skipped"
)

// Final reports whether s no longer changes.
func (s Status) Final() bool {
	return s != Pending && s != Retrying
}

// DeliveryResult is what became of one delivery.
type DeliveryResult struct {
	Delivery
	DeliveryID string `json:"delivery_id"`
	Status     Status `json:"status"`
	// Receipt is what the provider answered when it accepted the delivery.
	Receipt string `json:"receipt,omitempty"`
	// Reason explains a status other than delivered.
	Reason string `json:"reason,omitempty"`
	// Attempts counts the send attempts of the run that settled it.
	Attempts int32 `json:"attempts,omitempty"`
	// Fallbacks are the results of the delivery's fallbacks that were
	// tried, in order.
	Fallbacks []DeliveryResult `json:"fallbacks,omitempty"`
}

// LastStep is the step that settled the delivery: the last fallback tried,
// or the delivery itself. A skipped fallback was not tried (the subscriber
// opted out of its channel), so it settles nothing: a delivery that failed
// and whose only fallback was skipped stays failed.
func (d DeliveryResult) LastStep() DeliveryResult {
	for i := len(d.Fallbacks) - 1; i >= 0; i-- {
		if d.Fallbacks[i].Status != Skipped {
			return d.Fallbacks[i]
		}
	}
	return d
}

// Result is what became of a notification, one entry per delivery in the
// order they were given.
type Result struct {
	Key        string           `json:"key"`
	SendAt     *time.Time       `json:"send_at,omitempty"`
	Deliveries []DeliveryResult `json:"deliveries"`
	// Digest is set on a notification that joined a digest: its
	// deliveries are the digest's, once it was sent.
	Digest *DigestRef `json:"digest,omitempty"`
}

// Status sums up the notification: ambiguous if any delivery is, else
// failed if any failed, else cancelled if any was, else pending while any
// runs, else skipped if every delivery was, else suppressed if every
// delivery was suppressed or skipped, else delivered.
func (r Result) Status() Status {
	count := make(map[Status]int)
	for _, d := range r.Deliveries {
		count[d.LastStep().Status]++
	}
	for _, s := range []Status{Ambiguous, Failed, Cancelled, Retrying, Pending} {
		if count[s] > 0 {
			if s == Retrying {
				return Pending
			}
			return s
		}
	}
	if count[Skipped] == len(r.Deliveries) {
		return Skipped
	}
	if count[Suppressed]+count[Skipped] == len(r.Deliveries) {
		return Suppressed
	}
	return Delivered
}
