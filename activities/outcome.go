package activities

import (
	"errors"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
)

// findings is what the steps of one delivery attempt found: the claim, the
// lookup that settles an earlier attempt's doubt, the send and the commit.
// outcome turns them into the delivery's status and reason.
type findings struct {
	// claim is what the claim said: Granted (Ambiguous merged with what
	// earlier attempts reported) or AlreadySent.
	claim dedup.Claim
	// inApp: the feed wrote the item and committed the record in one step
	// (deliverInApp); claim says what its script found.
	inApp bool
	// lookup is what asking the provider about an earlier attempt said;
	// lookupErr, with unanswered, why it could not tell.
	lookup    lookupAnswer
	lookupErr error
	// receipt is the provider's: of the committed record, the lookup or
	// the send.
	receipt string
	// replayed: the receiver answered the send as a repeat it had
	// already applied.
	replayed bool
	// commit is what the commit said, after a send or a confirming lookup.
	commit error
	// failure, when set, is the reason of a failure that ends the
	// delivery (a broadcast recipient's permanent one), and maybeSent
	// whether an attempt may have sent it first.
	failure   string
	maybeSent bool
}

// lookupAnswer is what asking the provider whether an earlier attempt sent a
// delivery said.
type lookupAnswer int

const (
	// notAsked: nothing was in doubt, or the channel re-sends with the same
	// idempotency key instead of asking.
	notAsked lookupAnswer = iota
	// unanswered: the provider cannot be asked (no lookup, or it refused
	// to answer for good); the delivery is held.
	unanswered
	// found: the provider has it from an earlier attempt.
	found
	// absent: the provider confirmed that no earlier attempt sent it.
	absent
)

// FailedOutcome is the status and reason of a delivery that ends on a
// permanent failure (reason), made within another activity (a broadcast
// recipient's): ambiguous when an attempt may have sent it first.
func FailedOutcome(reason string, maybeSent bool) (onceflow.Status, string) {
	return outcome(findings{failure: reason, maybeSent: maybeSent})
}

// outcome is the status and reason of a delivery whose steps found f. It is
// the only place that decides them.
//
// A record committed by an earlier attempt of the same delivery (Mine: the
// same workflow run's same activity, whose attempt died after the commit
// and before its result or progress was saved) was delivered by that
// attempt; one committed by anything else (another start of the key,
// another broadcast, a re-run) is a suppressed repeat.
func outcome(f findings) (onceflow.Status, string) {
	const held = "an earlier attempt may have sent it and stopped before recording the outcome; held, not sent again"
	takenOver := errors.Is(f.commit, dedup.ErrTakenOver)
	switch {
	case f.failure != "" && f.maybeSent:
		return onceflow.Ambiguous, f.failure
	case f.failure != "":
		return onceflow.Failed, f.failure
	case f.claim.State == dedup.AlreadySent && f.inApp && f.claim.Mine:
		return onceflow.Delivered, "written to the feed by an earlier attempt of this delivery, which stopped before reporting it; written once"
	case f.claim.State == dedup.AlreadySent && f.inApp:
		return onceflow.Suppressed, "already in the feed from an earlier notification with this key; not written again"
	case f.claim.State == dedup.AlreadySent && f.claim.Outcome == dedup.Unconfirmed:
		return onceflow.Ambiguous, "already delivered; not sent again. An earlier attempt may have sent it and it was re-sent; the receiver may have it twice"
	case f.claim.State == dedup.AlreadySent && f.claim.Mine && f.claim.Outcome == dedup.Confirmed:
		return onceflow.Delivered, "delivered by an earlier attempt of this delivery, which stopped before reporting it; not sent again. An earlier attempt may have sent it too, but the receiver confirmed that it applied it once"
	case f.claim.State == dedup.AlreadySent && f.claim.Mine:
		return onceflow.Delivered, "delivered by an earlier attempt of this delivery, which stopped before reporting it; not sent again"
	case f.claim.State == dedup.AlreadySent && f.claim.Outcome == dedup.Confirmed:
		return onceflow.Suppressed, "already delivered; not sent again. An earlier attempt may have sent it and it was re-sent, but the receiver confirmed that it applied it once"
	case f.claim.State == dedup.AlreadySent:
		return onceflow.Suppressed, "already delivered by an earlier attempt or notification with this key; not sent again"
	case f.lookup == unanswered && f.lookupErr != nil:
		return onceflow.Ambiguous, held + "; the provider could not be asked whether it has it (" + f.lookupErr.Error() + ")"
	case f.lookup == unanswered:
		return onceflow.Ambiguous, held
	case f.lookup == found && takenOver:
		return onceflow.Ambiguous, "confirmed by the provider after an interrupted attempt, but another attempt took over meanwhile and may have sent it again"
	case f.lookup == found && f.commit != nil:
		return onceflow.Delivered, "delivered, confirmed by the provider after an interrupted attempt; not sent again; the dedup record could not be written (" + f.commit.Error() + ")"
	case f.lookup == found:
		return onceflow.Delivered, "delivered, confirmed by the provider after an interrupted attempt; not sent again"
	case takenOver:
		return onceflow.Ambiguous, "another attempt took over while this one was sending; the receiver may have it twice"
	case f.commit != nil:
		return onceflow.Delivered, "delivered, but the dedup record could not be written (" + f.commit.Error() + "); a new notification with this key may re-send it with the same idempotency key"
	case f.replayed:
		// An earlier attempt reached the receiver although it did not
		// report success (a 5xx after applying it, a timeout, a dead worker).
		return onceflow.Delivered, "an earlier attempt may have sent it: the receiver had already applied an earlier attempt of it and confirmed that it applied it once"
	case f.lookup == absent:
		return onceflow.Delivered, "an earlier attempt was interrupted; the provider confirmed that it had not sent it, and it was sent once"
	case f.claim.Ambiguous:
		return onceflow.Ambiguous, "an earlier attempt may have sent it (it timed out, was cut off, or got a server error, which a receiver may answer after applying it); re-sent with the same idempotency key, which the receiver did not confirm as a repeat"
	}
	return onceflow.Delivered, ""
}

// ledgerOutcome is what the commit of a delivery whose steps found f
// records for later claims: whether an earlier attempt may have sent it too.
func (f findings) ledgerOutcome() dedup.Outcome {
	switch {
	case f.replayed:
		return dedup.Confirmed
	case f.claim.Ambiguous && f.lookup == notAsked:
		return dedup.Unconfirmed
	}
	return dedup.Clean
}

// sends reports whether the delivery is to be sent: the claim was granted
// and no earlier attempt's possible send is in the way.
func (f findings) sends() bool {
	return f.claim.State == dedup.Granted && (f.lookup == notAsked || f.lookup == absent)
}
