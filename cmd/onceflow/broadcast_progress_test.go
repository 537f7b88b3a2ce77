package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/internal/testenv"
)

// gatedBroadcast writes a broadcast of 1,001 webhook recipients, two
// chunks: the first chunk's 1,000 are delivered at once; the last
// recipient is answered 429 (Retry-After: 1) until release is called, so
// that the broadcast rests at "1000 of 1001 settled" until the test has
// seen its progress there.
func gatedBroadcast(t *testing.T, key string) (path string, release func()) {
	var released atomic.Bool
	gated := onceflow.RecipientDeliveryID(key, "member-1000")
	rcv := testenv.NewReceiver(t, testenv.RetryAfter("1"), testenv.Answer(func(id string, _ int) int {
		if id == gated && !released.Load() {
			return http.StatusTooManyRequests
		}
		return 0
	}))
	path, _ = broadcastFile(t, key, rcv.URL, 1001, "Gated news")
	return path, func() { released.Store(true) }
}

// runBroadcastAt runs `broadcast --file path --wait` with stdout, waits
// until seen(what it wrote so far) holds, calls release, and returns the
// command's exit code and stderr.
func runBroadcastAt(t *testing.T, env mapEnv, path string, stdout io.Writer, written func() string, release func()) (int, string) {
	var stderr testenv.Buffer
	done := make(chan int, 1)
	go func() {
		done <- newApp(stdout, &stderr, env).run(context.Background(), []string{"broadcast", "--file", path, "--wait"})
	}()
	require.Eventually(t, func() bool { return strings.Contains(written(), "1000 of 1001 settled") },
		3*time.Minute, 100*time.Millisecond, "the progress reached the first chunk; stderr: %s", stderr.String())
	release()
	select {
	case code := <-done:
		return code, stderr.String()
	case <-time.After(3 * time.Minute):
		t.Fatalf("broadcast --wait did not end after the last recipient was let through; stderr: %s", stderr.String())
		return 0, ""
	}
}

var progressLine = regexp.MustCompile(`^(\d+) of 1001 settled: (\d+) delivered, 0 suppressed, 0 failed, 0 ambiguous$`)

// Not on a terminal (a pipe, a file, CI logs), `broadcast --wait` prints
// plain lines, one each time the counts have moved, growing to the final
// counts; no carriage returns or escape sequences.
func TestBroadcastWaitPrintsPlainLinesWhenNotATerminal(t *testing.T) {
	env := cliEnv(t)
	path, release := gatedBroadcast(t, "newsletter-plain")
	var out testenv.Buffer
	code, stderr := runBroadcastAt(t, env, path, &out, out.String, release)
	require.Equal(t, exitOK, code, stderr)

	text := out.String()
	assert.NotContains(t, text, "\r")
	assert.NotContains(t, text, "\x1b")
	lines := strings.Split(strings.TrimSpace(text), "\n")
	require.Equal(t, "broadcast/newsletter-plain", lines[0])
	var settled []int
	end := 1
	for ; end < len(lines) && progressLine.MatchString(lines[end]); end++ {
		m := progressLine.FindStringSubmatch(lines[end])
		n, _ := strconv.Atoi(m[1])
		settled = append(settled, n)
		assert.Equal(t, m[1], m[2], "every settled recipient was delivered: %q", lines[end])
	}
	t.Logf("progress lines: %q", lines[1:end])
	require.NotEmpty(t, settled, "progress lines follow the workflow ID:\n%s", text)
	assert.Contains(t, settled, 1000, "a line showed the first chunk settled")
	assert.Equal(t, 1001, settled[len(settled)-1], "the last line shows the final counts")
	for i := 1; i < len(settled); i++ {
		assert.Greater(t, settled[i], settled[i-1], "a line only when the counts moved: %v", settled)
	}
	require.Less(t, end, len(lines), "the counts table follows the progress")
	assert.Regexp(t, `^STATUS\s+TOTAL`, lines[end])
	assert.Regexp(t, `delivered\s+1001\s+1001\s+0\s+0\s+0\s+0\s+0`, text)
}

// openPTY opens a pseudo-terminal of cols columns and returns its two
// ends: what a program writes to the terminal end comes out of the
// controller end, as a terminal emulator reads it.
func openPTY(t *testing.T, cols uint16) (controller, terminal *os.File) {
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { _ = controller.Close() })
	fd := int(controller.Fd())
	require.NoError(t, unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0), "unlock the pseudo-terminal")
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	require.NoError(t, err)
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	require.NoError(t, unix.IoctlSetWinsize(int(terminal.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: cols}))
	return controller, terminal
}

// screen is what a terminal of width columns shows after out: carriage
// returns go back to the start of the row, text wraps at the last column,
// and ESC [ K erases to the end of the row.
func screen(out string, width int) []string {
	rows := [][]byte{nil}
	r, c := 0, 0
	put := func(b byte) {
		if c == width {
			r, c = r+1, 0
		}
		for len(rows) <= r {
			rows = append(rows, nil)
		}
		for len(rows[r]) <= c {
			rows[r] = append(rows[r], ' ')
		}
		rows[r][c] = b
		c++
	}
	for i := 0; i < len(out); i++ {
		switch b := out[i]; {
		case b == '\r':
			c = 0
		case b == '\n':
			r++
			for len(rows) <= r {
				rows = append(rows, nil)
			}
		case b == 0x1b && strings.HasPrefix(out[i:], "\x1b[K"):
			if c < len(rows[r]) {
				rows[r] = rows[r][:c]
			}
			i += 2
		default:
			put(b)
		}
	}
	lines := make([]string, len(rows))
	for i, row := range rows {
		lines[i] = strings.TrimRight(string(row), " ")
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// On a terminal, `broadcast --wait` draws a progress bar on one row and
// redraws it in place as the broadcast goes: the screen shows the workflow
// ID, one row of progress with the final counts, and the counts table; no
// row of stale progress. On 80 columns the bar and the counts fit in one
// row (the counts that are zero and say nothing left out); on a wide
// terminal the bar is full width and every count is shown.
func TestBroadcastWaitDrawsABarOnATerminal(t *testing.T) {
	env := cliEnv(t)
	for _, tc := range []struct {
		cols int
		row  string
	}{
		{80, `^\[#{17}\] 1001 of 1001 settled: 1001 delivered, 0 failed, 0 ambiguous$`},
		{132, `^\[#{30}\] 1001 of 1001 settled: 1001 delivered, 0 suppressed, 0 failed, 0 ambiguous$`},
	} {
		t.Run(strconv.Itoa(tc.cols)+" columns", func(t *testing.T) {
			key := fmt.Sprintf("newsletter-bar-%d", tc.cols)
			path, release := gatedBroadcast(t, key)
			controller, terminal := openPTY(t, uint16(tc.cols))
			var seen testenv.Buffer
			copied := make(chan struct{})
			go func() {
				defer close(copied)
				// Ends with EIO once the terminal end is closed.
				_, _ = io.Copy(&seen, controller)
			}()
			code, stderr := runBroadcastAt(t, env, path, terminal, seen.String, release)
			require.Equal(t, exitOK, code, stderr)
			require.NoError(t, terminal.Close())
			select {
			case <-copied:
			case <-time.After(30 * time.Second):
				t.Fatal("the terminal's output did not end")
			}

			raw := seen.String()
			t.Logf("written to the terminal: %q", raw)
			frames := regexp.MustCompile(`\r\[[#.]+\] (\d+) of 1001 settled`).FindAllStringSubmatch(raw, -1)
			require.GreaterOrEqual(t, len(frames), 2, "the bar was redrawn in place")
			assert.Equal(t, "1001", frames[len(frames)-1][1], "the last frame shows the final counts")
			var partial bool
			for _, f := range frames {
				partial = partial || f[1] == "1000"
			}
			assert.True(t, partial, "a frame showed the first chunk settled")
			first := strings.Index(raw, "\r[")
			last := strings.LastIndex(raw, "\r[")
			assert.NotContains(t, raw[first:last], "\n", "no newline between redraws")

			shown := screen(raw, tc.cols)
			t.Logf("the screen:\n%s", strings.Join(shown, "\n"))
			require.GreaterOrEqual(t, len(shown), 4)
			assert.Equal(t, "broadcast/"+key, shown[0])
			assert.Regexp(t, tc.row, shown[1], "one row of progress, the final counts")
			assert.Regexp(t, `^STATUS\s+TOTAL`, shown[2], "the table right under the progress row; no stale rows")
			assert.Regexp(t, `^delivered\s+1001\s+1001`, shown[3])
			assert.Less(t, len(shown[1]), tc.cols, "the progress row does not fill the terminal's width, where some terminals wrap")
		})
	}
}

// A frame of the bar never reaches a terminal's last column: on a narrow
// one the zero counts go first, then the bar, then the end of the line;
// the counts that matter stay as long as they fit.
func TestProgressBarFitsTheTerminal(t *testing.T) {
	st := broadcast.Status{BroadcastResult: onceflow.BroadcastResult{Total: 100000, Delivered: 49990, Suppressed: 10, Pending: 50000}}
	for _, tc := range []struct {
		width int
		want  string
	}{
		{200, "[###############...............] 50000 of 100000 settled: 49990 delivered, 10 suppressed, 0 failed, 0 ambiguous"},
		{100, "[#########.........] 50000 of 100000 settled: 49990 delivered, 10 suppressed, 0 failed, 0 ambiguous"},
		{80, "50000 of 100000 settled: 49990 delivered, 10 suppressed, 0 failed, 0 ambiguous"},
		{40, "50000 of 100000 settled: 49990 delivere"},
		{1, ""},
	} {
		got := progressBar(st, tc.width)
		assert.Equal(t, tc.want, got, "width %d", tc.width)
		assert.Less(t, len(got), max(tc.width, 1), "width %d", tc.width)
	}
	// Nothing suppressed: on 80 columns the bar comes back.
	st.Suppressed, st.Delivered = 0, 50000
	assert.Equal(t, "[######.......] 50000 of 100000 settled: 50000 delivered, 0 failed, 0 ambiguous", progressBar(st, 80))
}

// A wait cut short (an interrupt, a lost connection) finishes the bar's
// row: the error or the shell's prompt that follows starts on a row of its
// own instead of over the bar.
func TestBarRowEndsWhenTheWaitIsCutShort(t *testing.T) {
	controller, terminal := openPTY(t, 80)
	var seen testenv.Buffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&seen, controller)
	}()
	show, end := newApp(terminal, io.Discard, mapEnv{}).progress()
	for _, pending := range []int{8, 6} {
		show(broadcast.Status{Execution: "running", BroadcastResult: onceflow.BroadcastResult{Total: 10, Delivered: 10 - pending, Pending: pending}})
	}
	end()
	_, err := fmt.Fprint(terminal, "$ ")
	require.NoError(t, err)
	require.NoError(t, terminal.Close())
	<-copied
	shown := screen(seen.String(), 80)
	require.Len(t, shown, 2, "%q", seen.String())
	assert.Regexp(t, `^\[#+\.+\] 4 of 10 settled: 4 delivered, 0 suppressed, 0 failed, 0 ambiguous$`, shown[0])
	assert.Equal(t, "$", shown[1])
}
