package chat

import (
	"regexp"
	"strings"
)

// slackEscaper escapes the three characters Slack's mrkdwn gives meaning
// to (docs.slack.dev, "Formatting text for app surfaces": escape &, <, >
// as &amp;, &lt;, &gt;). With < and > escaped, a body cannot write
// Slack's control sequences: <!channel>, <!here>, <!everyone>, user and
// group mentions (<@U123>, <!subteam^S123>), nor links that hide their
// target (<https://evil.example|bank.example>).
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// broadcast matches the plain-text forms of Slack's broadcast mentions,
// which Slack still turns into notifications where names are linked
// (link_names, and some clients' rendering of incoming webhooks).
var broadcast = regexp.MustCompile(`(?i)@(channel|here|everyone)\b`)

// wordJoiner (U+2060) between '@' and the word keeps the text as it reads
// while no longer matching a mention.
const wordJoiner = "\u2060"

// escapeText makes a notification's text safe to post: it is shown as
// written and cannot ping a channel, a user or a group.
func escapeText(s string) string {
	return broadcast.ReplaceAllString(slackEscaper.Replace(s), "@"+wordJoiner+"$1")
}
