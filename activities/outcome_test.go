package activities

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
)

func TestOutcomeOfEveryFinding(t *testing.T) {
	sent := func(o dedup.Outcome, mine bool) dedup.Claim {
		return dedup.Claim{State: dedup.AlreadySent, Receipt: "HTTP 200", Outcome: o, Mine: mine}
	}
	granted := dedup.Claim{State: dedup.Granted}
	doubted := dedup.Claim{State: dedup.Granted, Ambiguous: true}
	takenOver := fmt.Errorf("commit dlv_1: %w", dedup.ErrTakenOver)
	redisDown := errors.New("dial tcp: connection refused")
	for _, c := range []struct {
		name   string
		f      findings
		status onceflow.Status
		reason string // a part of it
	}{
		{"sent once", findings{claim: granted}, onceflow.Delivered, ""},
		{"committed by an earlier attempt of this delivery", findings{claim: sent(dedup.Clean, true)}, onceflow.Delivered, "delivered by an earlier attempt of this delivery"},
		{"committed by an earlier attempt, confirmed by the receiver", findings{claim: sent(dedup.Confirmed, true)}, onceflow.Delivered, "confirmed that it applied it once"},
		{"committed by an earlier attempt, unconfirmed", findings{claim: sent(dedup.Unconfirmed, true)}, onceflow.Ambiguous, "may have it twice"},
		{"committed by another delivery", findings{claim: sent(dedup.Clean, false)}, onceflow.Suppressed, "already delivered by an earlier attempt or notification"},
		{"committed by another delivery, confirmed", findings{claim: sent(dedup.Confirmed, false)}, onceflow.Suppressed, "confirmed that it applied it once"},
		{"committed by another delivery, unconfirmed", findings{claim: sent(dedup.Unconfirmed, false)}, onceflow.Ambiguous, "may have it twice"},
		{"in-app written now", findings{inApp: true, claim: granted}, onceflow.Delivered, ""},
		{"in-app written by an earlier attempt", findings{inApp: true, claim: sent(dedup.Clean, true)}, onceflow.Delivered, "written to the feed by an earlier attempt"},
		{"in-app written by another notification", findings{inApp: true, claim: sent(dedup.Clean, false)}, onceflow.Suppressed, "already in the feed"},
		{"held: the provider cannot be asked", findings{claim: doubted, lookup: unanswered}, onceflow.Ambiguous, "held, not sent again"},
		{"held: the provider refused to answer", findings{claim: doubted, lookup: unanswered, lookupErr: errors.New("missing_scope")}, onceflow.Ambiguous, "could not be asked whether it has it (missing_scope)"},
		{"confirmed by the lookup", findings{claim: doubted, lookup: found}, onceflow.Delivered, "confirmed by the provider after an interrupted attempt; not sent again"},
		{"confirmed by the lookup, commit failed", findings{claim: doubted, lookup: found, commit: redisDown}, onceflow.Delivered, "could not be written (dial tcp"},
		{"confirmed by the lookup, taken over", findings{claim: doubted, lookup: found, commit: takenOver}, onceflow.Ambiguous, "another attempt took over meanwhile"},
		{"absent from the provider, sent", findings{claim: doubted, lookup: absent}, onceflow.Delivered, "confirmed that it had not sent it"},
		{"re-sent, receiver confirmed a repeat", findings{claim: doubted, replayed: true}, onceflow.Delivered, "confirmed that it applied it once"},
		{"re-sent, unconfirmed", findings{claim: doubted}, onceflow.Ambiguous, "did not confirm as a repeat"},
		{"sent, taken over", findings{claim: granted, commit: takenOver}, onceflow.Ambiguous, "took over while this one was sending"},
		{"sent, commit failed", findings{claim: granted, commit: redisDown}, onceflow.Delivered, "the dedup record could not be written (dial tcp"},
		{"re-sent, taken over", findings{claim: doubted, commit: takenOver}, onceflow.Ambiguous, "took over while this one was sending"},
		{"failed for good", findings{failure: "HTTP 410"}, onceflow.Failed, "HTTP 410"},
		{"failed for good after a possible send", findings{failure: "HTTP 410", maybeSent: true}, onceflow.Ambiguous, "HTTP 410"},
	} {
		status, reason := outcome(c.f)
		assert.Equal(t, c.status, status, c.name)
		if c.reason == "" {
			assert.Empty(t, reason, c.name)
		} else {
			assert.Contains(t, reason, c.reason, c.name)
		}
	}
}

func TestLedgerOutcomeSaysWhetherAnEarlierAttemptMaySendToo(t *testing.T) {
	doubted := dedup.Claim{State: dedup.Granted, Ambiguous: true}
	for _, c := range []struct {
		f    findings
		want dedup.Outcome
	}{
		{findings{claim: dedup.Claim{State: dedup.Granted}}, dedup.Clean},
		{findings{claim: doubted}, dedup.Unconfirmed},
		{findings{claim: doubted, replayed: true}, dedup.Confirmed},
		{findings{claim: doubted, lookup: absent}, dedup.Clean},
		{findings{claim: doubted, lookup: found}, dedup.Clean},
	} {
		assert.Equal(t, c.want, c.f.ledgerOutcome(), "%+v", c.f)
	}
}
