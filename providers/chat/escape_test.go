package chat_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pings matches what Slack turns into a notification: its control
// sequences (<!channel>, <!here>, <!everyone>, <@U123>, <!subteam^S1>) and
// the plain broadcast words.
var pings = regexp.MustCompile(`(?i)<[!@#]|@(channel|here|everyone)\b`)

// A body or subject that tries to ping reaches Slack escaped, through an
// incoming webhook and through chat.postMessage alike: it reads as
// written and pings no one.
func TestTextCannotMention(t *testing.T) {
	hostile := "Hey <!channel> and <!here|here> <!everyone> <@U123ABC> <!subteam^S123|@ops> @channel @Here @everyone " +
		"<https://evil.example|https://bank.example> a&b <b>"
	sl, srv, s := newSlack(t, "xoxb-test")
	for _, to := range []string{srv.URL + "/services/T1/B1/x", "C123"} {
		m := msg(to)
		m.Subject, m.Body = "<!here> deploy", hostile
		_, err := s.Send(context.Background(), m)
		require.NoError(t, err, to)
	}
	require.Len(t, sl.bodies, 2)
	for i, body := range sl.bodies {
		text := body["text"].(string)
		assert.NotRegexp(t, pings, text, "request %d", i)
		assert.Equal(t, false, body["link_names"], "request %d", i)
		assert.Contains(t, text, "&lt;!channel&gt;", "shown as written")
		assert.Contains(t, text, "a&amp;b &lt;b&gt;")
		assert.Equal(t, strings.Count(hostile, "@"), strings.Count(text, "@"), "every @ still there to read")
	}
}
