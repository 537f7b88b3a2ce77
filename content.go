package onceflow

import "fmt"

// MaxContentBytes bounds a notification's content times the steps that
// carry it: every delivery and every fallback is one activity whose input
// holds the subject and body, so the workflow's history holds the content
// once per step. 50 deliveries with 5 fallbacks each and a 64 KiB body put
// 19.5 MiB in the history (docs/limits.md), past Temporal's 10 MB warning
// and on the way to its 50 MB limit; 8 MiB keeps the worst case below the
// warning. A notification with at most 128 steps may still carry the
// largest body.
const MaxContentBytes = 8 << 20

// Steps counts n's deliveries and their fallbacks: the sends it may make.
func (n Notification) Steps() int {
	steps := len(n.Deliveries)
	for _, d := range n.Deliveries {
		steps += len(d.Fallback)
	}
	return steps
}

// validateContentTimesSteps checks n's subject and body, times its steps, against MaxContentBytes.
// A template's rendered text is checked when it is rendered.
func (n Notification) validateContentTimesSteps() error {
	per := len(n.Subject) + len(n.Body)
	if steps := n.Steps(); per*steps > MaxContentBytes {
		return &ValidationError{Field: "body", Reason: fmt.Sprintf(
			"with the subject is %d bytes, carried by each of %d deliveries and fallbacks: %d bytes in all, and at most %d are allowed (at most %d bytes each for %d)",
			per, steps, per*steps, MaxContentBytes, MaxContentBytes/steps, steps)}
	}
	return nil
}
