package devstack_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/pgproc"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/starter"
)

// BenchmarkStores measures single-webhook notifications end to end, 64 in
// flight, with the embedded Temporal server on SQLite with 1 history shard
// and on PostgreSQL (a local server with its default settings, fsync on)
// with 1 and 4 shards, one worker in the process each time. Beside the
// throughput it reports the CPU the test process (Temporal server, worker,
// clients) and PostgreSQL used per second of the run, in cores. The
// "nosync" runs use a second PostgreSQL with synchronous_commit=off (a
// commit returns before its WAL is flushed), which shows how much of the
// time commits spend waiting for the disk.
//
//	go test -run '^$' -bench Stores -benchtime 600x -timeout 30m ./internal/devstack
func BenchmarkStores(b *testing.B) {
	pg, err := pgproc.Start()
	require.NoError(b, err)
	defer pg.Stop()
	nosync, err := pgproc.Start("synchronous_commit=off")
	require.NoError(b, err)
	defer nosync.Stop()
	rcv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer rcv.Close()
	for _, tc := range []struct {
		name   string
		pg     *pgproc.Server
		db     string
		shards int32
	}{
		{"sqlite-shards-1", pg, "", 1},
		{"postgres-shards-1", pg, pg.URL("bench_shards_1"), 1},
		{"postgres-shards-4", pg, pg.URL("bench_shards_4"), 4},
		{"postgres-nosync-shards-1", nosync, nosync.URL("bench_shards_1"), 1},
		{"postgres-nosync-shards-4", nosync, nosync.URL("bench_shards_4"), 4},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var logs testenv.Buffer
			cfg := config(b, b.TempDir(), &logs)
			cfg.UIPort, cfg.APIAddr, cfg.Workers = 0, "", 1
			cfg.DB, cfg.HistoryShards = tc.db, tc.shards
			s := start(b, cfg)
			defer s.Stop()
			c := starter.New(s.Client, "")
			ctx := context.Background()
			send := func(key string) {
				started, err := c.Send(ctx, onceflow.Notification{Key: key, Body: "store probe",
					Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: rcv.URL}}})
				require.NoError(b, err)
				_, err = c.WaitRun(ctx, started)
				require.NoError(b, err)
			}
			for i := range 64 { // warm up: connections, caches, shard ownership
				send(fmt.Sprintf("warm-%d", i))
			}
			ids := make(chan int)
			var wg sync.WaitGroup
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range ids {
						send(fmt.Sprintf("store-%d-%d", b.N, i))
					}
				}()
			}
			self, pgCPU := cpuSeconds(b, os.Getpid(), false), cpuSeconds(b, tc.pg.PID(), true)
			t0 := time.Now()
			for i := range b.N {
				ids <- i
			}
			close(ids)
			wg.Wait()
			elapsed := time.Since(t0).Seconds()
			b.ReportMetric(float64(b.N)/elapsed, "notifications/s")
			b.ReportMetric((cpuSeconds(b, os.Getpid(), false)-self)/elapsed, "process-cores")
			b.ReportMetric((cpuSeconds(b, tc.pg.PID(), true)-pgCPU)/elapsed, "postgres-cores")
		})
	}
}

// cpuSeconds is the CPU time pid has used (user and system); with children,
// that of its live children and of those it has reaped too: PostgreSQL's
// backends are children of the postmaster.
func cpuSeconds(b *testing.B, pid int, children bool) float64 {
	const ticks = 100 // USER_HZ on Linux
	stat := func(pid int) []string {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil // a backend that just exited
		}
		s := string(data)
		return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	}
	sum := func(f []string, fields ...int) float64 {
		var t float64
		for _, i := range fields {
			v, _ := strconv.ParseFloat(f[i], 64)
			t += v
		}
		return t
	}
	// Fields after the command: state is 0, ppid 1, utime 11, stime 12,
	// cutime 13, cstime 14.
	f := stat(pid)
	require.NotNil(b, f)
	if !children {
		return sum(f, 11, 12) / ticks
	}
	total := sum(f, 11, 12, 13, 14)
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		child, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if cf := stat(child); cf != nil && cf[1] == strconv.Itoa(pid) {
			total += sum(cf, 11, 12)
		}
	}
	return total / ticks
}
