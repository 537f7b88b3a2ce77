package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkThroughput/minimal-workflow/in-flight-1-2         	     300	  11000000 ns/op	        90.00 notifications/s
BenchmarkThroughput/minimal-workflow/in-flight-16-2        	     300	   1000000 ns/op	       100.0 notifications/s
BenchmarkThroughput/onceflow-webhook/in-flight-1-2         	     300	  12000000 ns/op	        80.00 notifications/s
BenchmarkThroughput/onceflow-webhook/in-flight-1-2         	     300	  12000000 ns/op	        60.00 notifications/s
BenchmarkThroughput/onceflow-webhook/in-flight-16-2        	     300	   1000000 ns/op	        95.00 notifications/s
BenchmarkLatency/minimal-workflow-2                        	     300	   3600000 ns/op	         3.600 p50-ms	        17.00 p99-ms
BenchmarkLatency/onceflow-webhook-other-process-2          	     300	   6100000 ns/op	         6.100 p50-ms	        20.00 p99-ms
PASS
`

func TestParseAveragesRepeatedRowsAndKeepsSeriesOrder(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.series, ","); got != "minimal-workflow,onceflow-webhook" {
		t.Errorf("series %s", got)
	}
	if len(res.inFlight) != 2 || res.inFlight[0] != 1 || res.inFlight[1] != 16 {
		t.Errorf("in flight %v, want [1 16]", res.inFlight)
	}
	if got := res.throughput["onceflow-webhook"][1].value(); got != 70 {
		t.Errorf("two runs of 80 and 60 average %v, want 70", got)
	}
	if got := res.latency["onceflow-webhook-other-process"]["p99-ms"].value(); got != 20 {
		t.Errorf("p99 %v, want 20", got)
	}
}

func TestRenderDrawsOneBarPerValue(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	svg := render(res)
	// 2 in-flight levels x 2 series + 2 latency series x (p50, p99), plus
	// the background and one legend swatch per series (2 + 2).
	if got, want := strings.Count(svg, "<rect"), 4+4+1+4; got != want {
		t.Errorf("%d rects, want %d", got, want)
	}
	for _, label := range []string{"70.0", "100.0", "17.0", "onceflow-webhook-", "other-process", "16 in flight", "ratio 0.78", "ratio 0.95"} {
		if !strings.Contains(svg, label) {
			t.Errorf("chart lacks %q", label)
		}
	}
}

// Rows started two ways each compare with the baseline started the same
// way, not with the first series.
func TestRatiosPairEachStartWithItsBaseline(t *testing.T) {
	res, err := parse(strings.NewReader(`BenchmarkThroughput/minimal-workflow-same-process/in-flight-1-2 300 1 ns/op 100.0 notifications/s 0.5 load1
BenchmarkThroughput/onceflow-webhook-same-process/in-flight-1-2 300 1 ns/op 90.00 notifications/s 0.5 load1
BenchmarkThroughput/minimal-workflow-other-process/in-flight-1-2 300 1 ns/op 50.00 notifications/s 0.5 load1
BenchmarkThroughput/onceflow-webhook-other-process/in-flight-1-2 300 1 ns/op 49.00 notifications/s 0.5 load1
`))
	if err != nil {
		t.Fatal(err)
	}
	svg := render(res)
	for _, label := range []string{"same-process ratio 0.90", "other-process ratio 0.98"} {
		if !strings.Contains(svg, label) {
			t.Errorf("chart lacks %q", label)
		}
	}
	if strings.Contains(svg, "ratio 0.49") {
		t.Error("the other-process row was compared with the same-process baseline")
	}
}

func TestBadMetricNamesTheRow(t *testing.T) {
	_, err := parse(strings.NewReader("BenchmarkLatency/x-2 300 abc ns/op\n"))
	if err == nil || !strings.Contains(err.Error(), "BenchmarkLatency/x-2") {
		t.Errorf("error %v does not name the row", err)
	}
}
