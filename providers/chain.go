package providers

import (
	"context"
	"errors"
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

// Lookup asks every provider of the chain for m: an earlier attempt may
// have sent it through any one of them. Found in one is found; not found
// needs every provider to say so, so one that cannot look up (ErrNoLookup)
// or fails makes the whole lookup fail.
func (c Chain) Lookup(ctx context.Context, m Message, since time.Time) (Receipt, bool, error) {
	for _, p := range c {
		r, ok := p.Provider.(Resolver)
		if !ok {
			return Receipt{}, false, fmt.Errorf("%s: %w", p.Name, ErrNoLookup)
		}
		receipt, found, err := r.Lookup(ctx, m, since)
		if err != nil {
			pe := Classify(err)
			return Receipt{}, false, &Error{Permanent: pe.Permanent || errors.Is(err, ErrNoLookup), RetryAfter: pe.RetryAfter,
				Err: fmt.Errorf("%s: %w", p.Name, err)}
		}
		if found {
			receipt.ID = fmt.Sprintf("%s via %s", receipt.ID, p.Name)
			return receipt, true, nil
		}
	}
	return Receipt{}, false, nil
}
