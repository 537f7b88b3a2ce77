//go:build linux

package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// writeTopology prints the scaled-out stack and what its API processes
// accepted; nothing for the single-server one.
func (r Report) writeTopology(w io.Writer) {
	if r.Topology == "" {
		return
	}
	fmt.Fprintf(w, "  topology             %s\n", r.Topology)
	if len(r.APIAccepted) > 0 {
		parts := make([]string, len(r.APIAccepted))
		for i, n := range r.APIAccepted {
			parts[i] = fmt.Sprintf("api-%d %d", i+1, n)
		}
		fmt.Fprintf(w, "  starts accepted      %s (202s, every concurrent start of a notification counted)\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "  on killed primaries  %d open notifications had their dedup records on a Redis primary when it was killed\n", r.OnKilledPrimary)
}

// reason counts one ambiguous delivery's reason.
func (r *Report) reason(why string) {
	if r.AmbiguousReasons == nil {
		r.AmbiguousReasons = map[string]int{}
	}
	r.AmbiguousReasons[why]++
}

// writeReasons prints the ambiguous deliveries' reasons, the most common
// first, at most ten.
func (r Report) writeReasons(w io.Writer) {
	type count struct {
		why string
		n   int
	}
	var all []count
	for why, n := range r.AmbiguousReasons {
		all = append(all, count{why, n})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].why < all[j].why
	})
	for i, c := range all {
		if i == 10 {
			fmt.Fprintf(w, "  ... %d more ambiguity reasons\n", len(all)-10)
			break
		}
		fmt.Fprintf(w, "  ambiguous because    %d: %s\n", c.n, c.why)
	}
}
