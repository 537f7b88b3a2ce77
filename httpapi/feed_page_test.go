package httpapi_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/teststack"
)

// The example page in docs/examples, in headless Chromium, shows the feed
// and adds a new item as it arrives over the stream: the page comes from
// one origin and reads the API at another (CORS) with a subscriber token.
func TestExamplePageShowsTheFeedAndUpdatesLive(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the example page in Chromium; -short skips it")
	}
	chromium, err := exec.LookPath("chromium")
	require.NoError(t, err, "the example page test needs Debian's chromium (apt-get install -y chromium)")
	page := httptest.NewServer(http.FileServer(http.Dir("../docs/examples")))
	defer page.Close()

	// The second notification goes out once the page has opened its
	// stream: it can reach the page only live.
	var (
		once     sync.Once
		opened   = make(chan struct{})
		streamed = make(chan error, 1)
	)
	s, api, _, signer := newFeedAPIWith(t, page.URL, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/feed/stream") {
				once.Do(func() { close(opened) })
			}
			h.ServeHTTP(w, r)
		})
	})
	ctx := teststack.Context(t)
	send := func(key, body string) error {
		a := call(t, "POST", api.URL+"/v1/notifications", bearer(acmeToken, map[string]string{"Idempotency-Key": `"` + key + `"`}), inAppJSON("ada", body))
		if a.code != http.StatusAccepted {
			return errors.New("POST answered " + http.StatusText(a.code))
		}
		_, err := s.Client.ForTenant("acme").Wait(ctx, key)
		return err
	}
	require.NoError(t, send("page-1", "Your order shipped"))
	go func() {
		select {
		case <-opened:
			streamed <- send("page-2", "Ada commented on your post")
		case <-ctx.Done():
		}
	}()

	// Chromium's virtual time stands still while the stream is open; the
	// stream ends when the token expires, and the page's reconnect is
	// refused: then the DOM is dumped.
	tok, _, err := signer.Mint("acme", "ada", 8*time.Second, time.Now())
	require.NoError(t, err)
	pageURL := page.URL + "/feed.html#" + url.Values{"api": {api.URL}, "subscriber": {"ada"}, "token": {tok}}.Encode()
	out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=20000", "--dump-dom", pageURL).Output()
	require.NoError(t, err)
	dom := string(out)
	select {
	case err := <-streamed:
		require.NoError(t, err)
	default:
		t.Fatalf("the page never opened its stream:\n%s", dom)
	}
	assert.Contains(t, dom, "Your order shipped")
	assert.Contains(t, dom, "Ada commented on your post", "the live item")
	assert.Contains(t, dom, `<span id="unread">2</span>`)
	assert.Contains(t, dom, `<span id="status">disconnected</span>`, "the expired token's reconnect was refused")
	assert.Less(t, strings.Index(dom, "Ada commented"), strings.Index(dom, "Your order shipped"), "newest first")
}
