//go:build linux

package chaos

import (
	"fmt"
	"sort"
	"strings"

	"github.com/onceflow/onceflow"
)

// Evidence for an ambiguous outcome, as the report names it.
const (
	evidenceRepeat = "received more than once"
	evidenceFault  = "fault left the sender in doubt"
	evidenceKill   = "worker killed on its live lease"
	// evidenceFailover: open while the Redis primary with its record was
	// SIGKILLed (scaled topology); a claim or commit the primary
	// acknowledged may not have reached its replica.
	evidenceFailover = "open on a killed Redis primary"
)

// unjustifiedBound is how many ambiguous outcomes without evidence a run
// of n notifications tolerates: 2 plus 0.2%. Such an outcome is honest (an
// attempt that ran out of time may have sent), but has no cause the
// harness injected; the usual one is an attempt that outlived its 3 s
// deadline on a loaded machine or across a Redis or Temporal outage.
func unjustifiedBound(n int) int { return 2 + n/500 }

// justify counts, in justified, the evidence the harness holds for an
// ambiguous delivery it saw as s (killed: a worker kill interrupted it on
// its live lease; failedOver: it was open on a Redis primary that was
// killed), and reports whether there is any.
func justify(justified map[string]int, s sighting, killed, failedOver bool) bool {
	found := false
	for ev, has := range map[string]bool{
		evidenceRepeat:   s.Requests > 1,
		evidenceFault:    s.doubted(),
		evidenceKill:     killed,
		evidenceFailover: failedOver,
	} {
		if has {
			justified[ev]++
			found = true
		}
	}
	return found
}

// What Onceflow's reason says of a delivery settled by asking the
// provider (activities.Deliver): the message was found, or it was not and
// was sent once.
const (
	lookupFoundReason  = "confirmed by the provider after an interrupted attempt"
	lookupAbsentReason = "the provider confirmed that it had not sent it"
)

// check applies the invariants to what the far ends saw (seen, per channel
// and recipient identity) and what Onceflow reported (results).
func check(rep *Report, targets []target, out outcome, seen map[string]map[string]sighting, interrupted, failedOver map[string]bool) {
	rep.Justified = map[string]int{}
	rep.UnjustifiedBound = unjustifiedBound(rep.Notifications)
	for _, t := range targets {
		k := t.n.Key
		ch := rep.channel(t.channel)
		ch.Notifications++
		s := seen[t.channel][t.ident]
		ch.Lookups += s.Lookups
		rep.Lookups += s.Lookups
		if s.Copies > 1 {
			ch.Resends += s.Copies - 1
			rep.RawResends += s.Copies - 1
		}
		if !out.accepted[k] {
			continue
		}
		res, ok := out.results[k]
		if !ok || len(res.Deliveries) == 0 {
			ch.Lost++
			rep.Lost = append(rep.Lost, fmt.Sprintf("%s (%s): never reached a final state", k, t.channel))
			continue
		}
		d := res.Deliveries[0].LastStep()
		what := fmt.Sprintf("%s (%s)", k, t.channel)
		switch d.Status {
		case onceflow.Delivered, onceflow.Suppressed:
			ch.Delivered++
			if s.Effects == 0 {
				ch.Lost++
				rep.Lost = append(rep.Lost, fmt.Sprintf("%s: %s but the far end never took it", what, d.Status))
			}
		case onceflow.Ambiguous:
			ch.Ambiguous++
			rep.Ambiguous++
			rep.reason(d.Reason)
			if !justify(rep.Justified, s, interrupted[k], failedOver[k]) {
				rep.Unjustified = append(rep.Unjustified, fmt.Sprintf("%s: received %d, effects %d, no fault, no kill on its lease: %s", what, s.Requests, s.Effects, d.Reason))
			}
		default:
			rep.Failed = append(rep.Failed, fmt.Sprintf("%s: %s: %s", what, d.Status, d.Reason))
		}
		if s.Effects > 1 {
			rep.DuplicateEffects = append(rep.DuplicateEffects, fmt.Sprintf("%s: took effect %d times", what, s.Effects))
			if d.Status == onceflow.Ambiguous {
				ch.ReportedDuplicates++
			} else {
				ch.SilentDuplicates++
				rep.SilentDuplicates = append(rep.SilentDuplicates, fmt.Sprintf("%s: took effect %d times, reported %s (%q); faults: %s", what, s.Effects, d.Status, d.Reason, faultList(s.Faults)))
			}
		}
		checkLookup(rep, ch, what, d, s)
		// A deduplicating receiver's repeats: reported ambiguous, or
		// confirmed by the receiver, as its own log shows. Onceflow's
		// reason text is no evidence.
		if t.channel == "webhook" && d.Status != onceflow.Ambiguous {
			claims := strings.Contains(d.Reason, "confirmed")
			switch {
			case s.Confirmed && (s.Copies > 1 || claims):
				rep.Confirmed++
			case s.Copies > 1:
				rep.Unaccounted = append(rep.Unaccounted, fmt.Sprintf("%s: %d re-sends, reported %s (%q), and the receiver never answered one as a repeat", what, s.Copies-1, d.Status, d.Reason))
			case claims:
				rep.Unaccounted = append(rep.Unaccounted, fmt.Sprintf("%s: reported %q, which the receiver's log does not show", what, d.Reason))
			}
		}
	}
	rep.Reported = rep.Ambiguous + rep.Confirmed + rep.LookupFound + rep.LookupAbsent
	for _, l := range [][]string{rep.Lost, rep.DuplicateEffects, rep.SilentDuplicates, rep.Unaccounted, rep.LookupWrong, rep.Unjustified, rep.Failed} {
		sort.Strings(l)
	}
}

// checkLookup counts a delivery Onceflow says it settled by asking the
// provider, and checks that against the fake's own record: found, the
// provider holds exactly one copy and the receipt is that copy's; not
// found and sent once, exactly one copy in the end, the one receipted.
// Onceflow's reason says which; the fake's record says whether it is so.
func checkLookup(rep *Report, ch *ChannelReport, what string, d onceflow.DeliveryResult, s sighting) {
	found := strings.Contains(d.Reason, lookupFoundReason)
	absent := strings.Contains(d.Reason, lookupAbsentReason)
	if d.Status != onceflow.Delivered || !found && !absent {
		return
	}
	kind := "found"
	if found {
		ch.LookupFound++
		rep.LookupFound++
	} else {
		kind = "not found, sent once"
		ch.LookupAbsent++
		rep.LookupAbsent++
	}
	switch {
	case s.Copies != 1 || len(s.IDs) != 1:
		rep.LookupWrong = append(rep.LookupWrong, fmt.Sprintf("%s: settled by lookup (%s), but the provider holds %d copies %v", what, kind, s.Copies, s.IDs))
	case d.Receipt != s.IDs[0]:
		rep.LookupWrong = append(rep.LookupWrong, fmt.Sprintf("%s: settled by lookup (%s) with receipt %q, but the provider's one copy is %q", what, kind, d.Receipt, s.IDs[0]))
	}
}
