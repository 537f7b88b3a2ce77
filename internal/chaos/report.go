//go:build linux

package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Report is what a run found.
type Report struct {
	Notifications int
	Workers       int
	// WorkerExits counts workers that exited by themselves (one started
	// while the Temporal server was down) and were started again.
	WorkerExits int
	Seed        uint64
	// Faults counts every fault injected, by kind: far ends' faults
	// ("receiver 429", "smtp drop after accept") and processes' ("worker
	// SIGKILL" when the worker died of it, "redis restart" when Redis came
	// back, ...).
	Faults   map[string]int
	Accepted int
	// Lost: reported delivered or suppressed, but no effect at the far
	// end; or never closed.
	Lost []string
	// DuplicateEffects took effect more than once at the far end;
	// SilentDuplicates are those of them not reported ambiguous.
	DuplicateEffects []string
	SilentDuplicates []string
	// RawResends counts copies a far end took in beyond a delivery's first.
	RawResends int
	// Unaccounted are deliveries re-sent to the deduplicating webhook
	// receiver and neither reported ambiguous nor confirmed as repeats in
	// the receiver's own log.
	Unaccounted []string
	// Reported counts deliveries whose earlier attempt may have sent:
	// left Ambiguous, Confirmed once by the receiver's log, or settled by
	// asking the provider (LookupFound, LookupAbsent).
	Reported  int
	Confirmed int
	Ambiguous int
	// LookupFound counts deliveries Onceflow reported delivered because
	// the provider's lookup found an interrupted attempt's message;
	// LookupAbsent those it sent once more because the lookup found none.
	// LookupWrong lists those the fake's own record contradicts: not
	// exactly one copy, or a receipt that is not the copy's.
	LookupFound  int
	LookupAbsent int
	LookupWrong  []string
	// Lookups counts the lookup requests (Twilio list, Slack history)
	// the fakes answered.
	Lookups int
	// Justified counts ambiguous deliveries by the evidence the harness
	// holds for them (one delivery may have several); Unjustified lists
	// those with none, which may number at most UnjustifiedBound.
	Justified        map[string]int
	Unjustified      []string
	UnjustifiedBound int
	// KillsHitLiveLease counts worker kills that interrupted at least one
	// delivery whose lease the worker held (LeasesInterrupted in all);
	// KillsUnattributed those the lease probe could not look into
	// (Redis or Temporal down at the time).
	KillsHitLiveLease int
	LeasesInterrupted int
	KillsUnattributed int
	// Invalid are requests a far end refused because they did not check
	// out (signature, body, credentials).
	Invalid []string
	// HarnessErrors are faults that did not take (a process that did not
	// die of its SIGKILL or did not come back).
	HarnessErrors []string
	Failed        []string
	TimedOut      bool
	Timeout       time.Duration
	Channels      map[string]*ChannelReport
	// Broadcasts is what became of the broadcasts, counted apart.
	Broadcasts BroadcastReport
	WallTime   time.Duration
	// Topology describes the scaled-out stack, "" for the single-server
	// one; APIAccepted counts the 202s of each of its API processes;
	// OnKilledPrimary counts the open notifications whose dedup records
	// were on a Redis primary when it was killed.
	Topology        string
	APIAccepted     []int
	OnKilledPrimary int
	// AmbiguousReasons counts the ambiguous deliveries by Onceflow's
	// reason, its variable parts (durations, counts) left as they are.
	AmbiguousReasons map[string]int
}

// ChannelReport is one channel's part of a Report.
type ChannelReport struct {
	Notifications int
	// Delivered counts those reported delivered or suppressed.
	Delivered          int
	Ambiguous          int
	Lost               int
	SilentDuplicates   int
	ReportedDuplicates int
	// Resends counts copies the far end took in beyond a delivery's first.
	Resends int
	// LookupFound and LookupAbsent count deliveries settled by asking the
	// provider: found, or not found and sent once; Lookups the lookup
	// requests it answered.
	LookupFound  int
	LookupAbsent int
	Lookups      int
	Faults       map[string]int
}

func (r *Report) channel(name string) *ChannelReport {
	if r.Channels == nil {
		r.Channels = map[string]*ChannelReport{}
	}
	c := r.Channels[name]
	if c == nil {
		c = &ChannelReport{Faults: map[string]int{}}
		r.Channels[name] = c
	}
	return c
}

// OK reports whether every invariant held.
func (r Report) OK() bool {
	return r.Accepted == r.Notifications && !r.TimedOut && len(r.Lost) == 0 && len(r.SilentDuplicates) == 0 &&
		len(r.Unaccounted) == 0 && len(r.LookupWrong) == 0 && len(r.Failed) == 0 && len(r.Invalid) == 0 && len(r.HarnessErrors) == 0 &&
		len(r.Unjustified) <= r.UnjustifiedBound && r.Broadcasts.ok()
}

// Write prints the report.
func (r Report) Write(w io.Writer) {
	fmt.Fprintf(w, "chaos report (seed %d)\n", r.Seed)
	fmt.Fprintf(w, "  notifications        %d (accepted %d)\n", r.Notifications, r.Accepted)
	fmt.Fprintf(w, "  workers              %d processes (%d exits of their own, started again)\n", r.Workers, r.WorkerExits)
	r.writeTopology(w)
	var kinds []string
	for k := range r.Faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  fault %-14s %d\n", k, r.Faults[k])
	}
	fmt.Fprintf(w, "  kills on live leases %d of %d worker kills interrupted a delivery with a live lease (%d deliveries; %d kills not attributable)\n",
		r.KillsHitLiveLease, r.Faults[workerKill], r.LeasesInterrupted, r.KillsUnattributed)
	fmt.Fprintf(w, "  lost                 %d\n", len(r.Lost))
	fmt.Fprintf(w, "  duplicate effects    %d (silent %d, reported ambiguous %d)\n", len(r.DuplicateEffects), len(r.SilentDuplicates), len(r.DuplicateEffects)-len(r.SilentDuplicates))
	fmt.Fprintf(w, "  raw re-sends         %d (unaccounted %d)\n", r.RawResends, len(r.Unaccounted))
	fmt.Fprintf(w, "  ambiguous reported   %d (%d confirmed once by the receiver, %d settled by a provider lookup, %d left ambiguous)\n",
		r.Reported, r.Confirmed, r.LookupFound+r.LookupAbsent, r.Ambiguous)
	fmt.Fprintf(w, "  settled by lookup    %d found (not sent again), %d not found (sent once); %d contradicted by the fake's record; %d lookup requests\n",
		r.LookupFound, r.LookupAbsent, len(r.LookupWrong), r.Lookups)
	for _, name := range []string{"sms", "chat"} {
		if c, ok := r.Channels[name]; ok {
			settled := c.LookupFound + c.LookupAbsent
			share := 0.0
			if settled+c.Ambiguous > 0 {
				share = 100 * float64(c.Ambiguous) / float64(settled+c.Ambiguous)
			}
			fmt.Fprintf(w, "  %-4s ambiguities     %d: %d settled by lookup (%d found, %d not found), %d left ambiguous (%.1f%%)\n",
				name, settled+c.Ambiguous, settled, c.LookupFound, c.LookupAbsent, c.Ambiguous, share)
		}
	}
	var ev []string
	for _, k := range []string{evidenceRepeat, evidenceFault, evidenceKill, evidenceFailover} {
		ev = append(ev, fmt.Sprintf("%s %d", k, r.Justified[k]))
	}
	fmt.Fprintf(w, "  ambiguity evidence   %s\n", strings.Join(ev, ", "))
	fmt.Fprintf(w, "  ambiguous unjustified %d (bound %d)\n", len(r.Unjustified), r.UnjustifiedBound)
	r.writeReasons(w)
	fmt.Fprintf(w, "  invalid requests     %d\n", len(r.Invalid))
	fmt.Fprintf(w, "  failed               %d\n", len(r.Failed))
	if len(r.Channels) > 0 {
		fmt.Fprintf(w, "  %-12s %6s %9s %9s %5s %10s %12s %8s %7s %6s  %s\n", "channel", "notif", "delivered", "ambiguous", "lost", "silent-dup", "reported-dup", "re-sends", "lk-found", "lk-not", "faults injected")
		for _, name := range Channels {
			c, ok := r.Channels[name]
			if !ok {
				continue
			}
			fmt.Fprintf(w, "  %-12s %6d %9d %9d %5d %10d %12d %8d %7d %6d  %s\n", name, c.Notifications, c.Delivered, c.Ambiguous, c.Lost,
				c.SilentDuplicates, c.ReportedDuplicates, c.Resends, c.LookupFound, c.LookupAbsent, faultList(c.Faults))
		}
	}
	r.Broadcasts.write(w)
	fmt.Fprintf(w, "  wall time            %v\n", r.WallTime.Round(time.Millisecond))
	if r.TimedOut {
		fmt.Fprintf(w, "  timed out            after %v, with notifications still open\n", r.Timeout)
	}
	for _, list := range []struct {
		name  string
		items []string
	}{{"lost", r.Lost}, {"silent duplicate", r.SilentDuplicates}, {"unaccounted re-send", r.Unaccounted}, {"lookup contradicted", r.LookupWrong},
		{"unjustified ambiguity", r.Unjustified}, {"invalid request", r.Invalid}, {"harness error", r.HarnessErrors}, {"failed", r.Failed}} {
		for i, item := range list.items {
			if i == 10 {
				fmt.Fprintf(w, "  ... %d more %s\n", len(list.items)-10, list.name)
				break
			}
			fmt.Fprintf(w, "  %s: %s\n", list.name, item)
		}
	}
	if r.OK() {
		fmt.Fprintln(w, "  invariants           hold")
	} else {
		fmt.Fprintln(w, "  invariants           FAILED")
	}
}

func faultList(f map[string]int) string {
	var kinds []string
	for k, n := range f {
		if n > 0 {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		return "-"
	}
	sort.Strings(kinds)
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%s %d", k, f[k])
	}
	return strings.Join(kinds, ", ")
}
