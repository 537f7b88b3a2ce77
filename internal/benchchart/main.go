// Command benchchart draws the devstack benchmark's throughput and latency
// as one SVG, from the output of `go test -bench` on standard input:
//
//	go test -run '^$' -bench 'Throughput|Latency' -benchtime 300x ./internal/devstack | tee bench.txt
//	go run ./internal/benchchart < bench.txt > docs/benchmarks.svg
//
// Throughput rows are BenchmarkThroughput/<series>/in-flight-<n> with a
// notifications/s metric; latency rows are BenchmarkLatency/<series> with
// p50-ms and p99-ms. A row that appears more than once (-count) is
// averaged. It uses nothing but the standard library, so the chart can be
// redrawn wherever the benchmark runs.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

func main() {
	res, err := parse(os.Stdin)
	if err == nil && len(res.throughput) == 0 && len(res.latency) == 0 {
		err = fmt.Errorf("no BenchmarkThroughput or BenchmarkLatency rows on standard input")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchchart:", err)
		os.Exit(1)
	}
	if _, err := io.WriteString(os.Stdout, render(res)); err != nil {
		fmt.Fprintln(os.Stderr, "benchchart:", err)
		os.Exit(1)
	}
}

// mean accumulates the samples of one metric.
type mean struct{ sum, n float64 }

func (m *mean) add(v float64) { m.sum += v; m.n++ }
func (m mean) value() float64 {
	if m.n == 0 {
		return 0
	}
	return m.sum / m.n
}

// results holds the averaged metrics by series, in the order first seen.
type results struct {
	series     []string                 // throughput series
	inFlight   []int                    // sorted in-flight levels
	throughput map[string]map[int]*mean // series -> in flight -> notifications/s
	latSeries  []string                 // latency series
	latency    map[string]map[string]*mean
}

// parse reads `go test -bench` output. Lines other than benchmark rows
// (goos, PASS, logs) are skipped.
func parse(r io.Reader) (*results, error) {
	res := &results{throughput: map[string]map[int]*mean{}, latency: map[string]map[string]*mean{}}
	levels := map[int]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := trimProcs(f[0])
		metrics := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("row %q: metric %q is not a number", f[0], f[i])
			}
			metrics[f[i+1]] = v
		}
		parts := strings.Split(name, "/")
		switch {
		case parts[0] == "BenchmarkThroughput" && len(parts) == 3 && strings.HasPrefix(parts[2], "in-flight-"):
			n, err := strconv.Atoi(strings.TrimPrefix(parts[2], "in-flight-"))
			if err != nil {
				return nil, fmt.Errorf("row %q: %q is not in-flight-<number>", f[0], parts[2])
			}
			v, ok := metrics["notifications/s"]
			if !ok {
				continue
			}
			if res.throughput[parts[1]] == nil {
				res.throughput[parts[1]] = map[int]*mean{}
				res.series = append(res.series, parts[1])
			}
			if res.throughput[parts[1]][n] == nil {
				res.throughput[parts[1]][n] = &mean{}
			}
			res.throughput[parts[1]][n].add(v)
			levels[n] = true
		case parts[0] == "BenchmarkLatency" && len(parts) == 2:
			if res.latency[parts[1]] == nil {
				res.latency[parts[1]] = map[string]*mean{}
				res.latSeries = append(res.latSeries, parts[1])
			}
			for _, k := range []string{"p50-ms", "p99-ms"} {
				if v, ok := metrics[k]; ok {
					if res.latency[parts[1]][k] == nil {
						res.latency[parts[1]][k] = &mean{}
					}
					res.latency[parts[1]][k].add(v)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	for n := range levels {
		res.inFlight = append(res.inFlight, n)
	}
	sort.Ints(res.inFlight)
	return res, nil
}

// trimProcs drops the -GOMAXPROCS suffix go test appends to a name.
func trimProcs(name string) string {
	i := strings.LastIndex(name, "-")
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"}

const (
	panelW, panelH = 420.0, 260.0
	left, top      = 50.0, 40.0
	gap            = 60.0
)

// render draws the throughput panel and the latency panel side by side.
func render(res *results) string {
	var b strings.Builder
	width := left + panelW + gap + left + panelW + 20
	height := top + panelH + 120
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")

	var groups []string
	var tput [][]float64
	for _, n := range res.inFlight {
		groups = append(groups, fmt.Sprintf("%d in flight", n))
		row := make([]float64, len(res.series))
		for i, s := range res.series {
			if m := res.throughput[s][n]; m != nil {
				row[i] = m.value()
			}
		}
		tput = append(tput, row)
	}
	panel(&b, left, "Throughput (notifications/s, higher is better)", groups, res.series, tput, "%.1f")
	// The figure the target is about: each Onceflow series over the minimal
	// workflow started the same way, per level, in one run.
	groupW := panelW / float64(max(len(groups), 1))
	for line, p := range ratioPairs(res.series) {
		for g, row := range tput {
			if row[p.base] > 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%s</text>`+"\n",
					left+float64(g)*groupW+groupW*0.5, top+panelH+32+float64(line)*14, escape(fmt.Sprintf("%sratio %.2f", p.label, row[p.series]/row[p.base])))
			}
		}
	}

	var lat [][]float64
	for _, s := range res.latSeries {
		row := []float64{0, 0}
		for i, k := range []string{"p50-ms", "p99-ms"} {
			if m := res.latency[s][k]; m != nil {
				row[i] = m.value()
			}
		}
		lat = append(lat, row)
	}
	panel(&b, left+panelW+gap+left, "Latency to the receiver (ms, lower is better)", res.latSeries, []string{"p50", "p99"}, lat, "%.1f")
	b.WriteString("</svg>\n")
	return b.String()
}

// ratioPair is one Onceflow series and the minimal workflow's series it
// is compared with, by index in results.series.
type ratioPair struct {
	series, base int
	label        string
}

// ratioPairs pairs each onceflow-webhook<suffix> series with
// minimal-workflow<suffix>, the baseline started the same way (e.g.
// -same-process, -other-process). Output without such pairs (one minimal
// and one Onceflow series) compares the last series with the first.
func ratioPairs(series []string) []ratioPair {
	index := map[string]int{}
	for i, s := range series {
		index[s] = i
	}
	var pairs []ratioPair
	for i, s := range series {
		suffix, ok := strings.CutPrefix(s, "onceflow-webhook")
		if !ok || suffix == "" {
			continue
		}
		if base, ok := index["minimal-workflow"+suffix]; ok {
			pairs = append(pairs, ratioPair{series: i, base: base, label: strings.TrimPrefix(suffix, "-") + " "})
		}
	}
	if len(pairs) == 0 && len(series) >= 2 {
		pairs = append(pairs, ratioPair{series: len(series) - 1, base: 0})
	}
	return pairs
}

// panel draws a grouped bar chart at x0: one group per entry of groups, one
// bar per series in each, values[group][series].
func panel(b *strings.Builder, x0 float64, title string, groups, series []string, values [][]float64, format string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-weight="bold">%s</text>`+"\n", x0, top-20, escape(title))
	if len(groups) == 0 || len(series) == 0 {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">no data</text>`+"\n", x0, top+panelH/2)
		return
	}
	maxV := 0.0
	for _, row := range values {
		for _, v := range row {
			maxV = max(maxV, v)
		}
	}
	if maxV == 0 {
		maxV = 1
	}
	scale := niceCeil(maxV)
	y := func(v float64) float64 { return top + panelH - v/scale*panelH }
	for i := 0; i <= 4; i++ {
		v := scale * float64(i) / 4
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y(v), x0+panelW, y(v))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#555">%g</text>`+"\n", x0-4, y(v)+4, v)
	}
	groupW := panelW / float64(len(groups))
	barW := groupW * 0.8 / float64(len(series))
	for g, name := range groups {
		gx := x0 + float64(g)*groupW + groupW*0.1
		for s := range series {
			v := values[g][s]
			bx := gx + float64(s)*barW
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n",
				bx, y(v), barW-2, top+panelH-y(v), palette[s%len(palette)])
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">`+format+`</text>`+"\n", bx+barW/2-1, y(v)-3, v)
		}
		cx := x0 + float64(g)*groupW + groupW*0.5
		for i, line := range wrap(name, 18) {
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", cx, top+panelH+16+float64(i)*14, escape(line))
		}
	}
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", x0, top+panelH, x0+panelW, top+panelH)
	for s, name := range series {
		lx := x0 + float64(s%2)*panelW/2
		ly := top + panelH + 62 + float64(s/2)*18
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", lx, ly-10, palette[s%len(palette)])
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+16, ly, escape(name))
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, for the axis.
func niceCeil(v float64) float64 {
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for p > v {
		p /= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// wrap splits a long series name at the dash nearest its middle, so that
// neighbouring labels do not overlap.
func wrap(name string, width int) []string {
	if len(name) <= width {
		return []string{name}
	}
	best := -1
	for i, r := range name {
		if r == '-' && (best < 0 || abs(i-len(name)/2) < abs(best-len(name)/2)) {
			best = i
		}
	}
	if best < 0 {
		return []string{name}
	}
	return []string{name[:best+1], name[best+1:]}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
