package providers

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Named is a provider with a name for receipts and errors, such as
// "smtp relay 2".
type Named struct {
	Name string
	Provider
}

// Chain is one channel's providers in order of preference. Send tries the
// next provider only when the previous one certainly did not send (its
// error is not MaybeSent): a delivery that may be with one provider is
// never handed to another.
type Chain []Named

// Send sends m through the first provider that takes it. The receipt of a
// send that needed a fallback names the provider and the failures before
// it.
func (c Chain) Send(ctx context.Context, m Message) (Receipt, error) {
	var failures []string
	permanent := true
	var retryAfter time.Duration
	for _, p := range c {
		r, err := p.Send(ctx, m)
		if err == nil {
			if len(failures) > 0 {
				r.ID = fmt.Sprintf("%s via %s after %s", r.ID, p.Name, strings.Join(failures, "; "))
			}
			return r, nil
		}
		pe := Classify(err)
		if pe.MaybeSent {
			return Receipt{}, err
		}
		failures = append(failures, p.Name+": "+err.Error())
		permanent = permanent && pe.Permanent
		if retryAfter == 0 || (pe.RetryAfter > 0 && pe.RetryAfter < retryAfter) {
			retryAfter = pe.RetryAfter
		}
	}
	return Receipt{}, &Error{Permanent: permanent, RetryAfter: retryAfter, Err: fmt.Errorf("every provider failed: %s", strings.Join(failures, "; "))}
}
