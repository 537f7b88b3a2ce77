// Package chat delivers notifications to Slack: to an incoming webhook when
// the recipient is its https URL, or with chat.postMessage and a bot token
// when the recipient is a channel ID or name. Slack has no idempotency key
// for either, so an ambiguous delivery is held rather than re-sent.
package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/egress"
)

// Environment variables read by ConfigFromEnv.
const (
	// EnvBotToken enables chat.postMessage; without it only incoming
	// webhook URLs can be recipients.
	EnvBotToken = "ONCEFLOW_SLACK_BOT_TOKEN"
	EnvAPIURL   = "ONCEFLOW_SLACK_API_URL"
	// EnvEnabled turns chat on for incoming webhooks alone.
	EnvEnabled = "ONCEFLOW_SLACK_ENABLED"
)

// DefaultAPIURL is Slack's Web API.
const DefaultAPIURL = "https://slack.com/api"

// Config is a Slack app.
type Config struct {
	BotToken string
	APIURL   string
}

// ConfigFromEnv reads a Config; ok is false when chat is not configured.
func ConfigFromEnv(getenv func(string) string) (cfg Config, ok bool) {
	cfg = Config{BotToken: getenv(EnvBotToken), APIURL: getenv(EnvAPIURL)}
	return cfg, cfg.BotToken != "" || getenv(EnvEnabled) == "true"
}

// Sender posts to Slack.
type Sender struct {
	cfg Config
	// client calls the Web API at cfg.APIURL, which the operator
	// configures; hooks posts to incoming-webhook URLs, which callers
	// supply, through the egress guard.
	client *http.Client
	hooks  *http.Client
}

// New checks cfg and returns a Sender. Every address an incoming-webhook
// URL leads to must pass guard; the Web API at cfg.APIURL is the
// operator's and is not guarded.
func New(cfg Config, guard egress.Guard) (*Sender, error) {
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if u, err := url.Parse(cfg.APIURL); err != nil || u.Host == "" {
		return nil, fmt.Errorf("chat: %s=%q is not an absolute URL", EnvAPIURL, cfg.APIURL)
	}
	return &Sender{cfg: cfg, client: providers.NewHTTPClient(), hooks: providers.NewGuardedHTTPClient(guard)}, nil
}

// Slack's APIs take no idempotency key: a 500, 502 or 504 may come after
// the message was posted.
var (
	// incomingWebhookAPI answers errors as text: "invalid_payload",
	// "channel_not_found". Its URL is the caller's, and so is what it
	// answers: DoHTTP keeps an excerpt of the first few KiB.
	incomingWebhookAPI = providers.API{Name: "chat", Receiver: providers.Unkeyed,
		Detail: func(b []byte) string { return string(b) }, MaxBody: providers.CallerMaxBody}
	postMessageAPI = providers.API{Name: "chat", Receiver: providers.Unkeyed}
)

// EventType is the metadata event type of every message Onceflow posts with
// chat.postMessage; its payload carries the delivery ID, by which Lookup
// finds the message.
const EventType = "onceflow_delivery"

// Send posts m to the recipient in m.To. Every failure is a
// *providers.Error.
func (s *Sender) Send(ctx context.Context, m providers.Message) (providers.Receipt, error) {
	// The text is the caller's: escaped, so that it cannot mention
	// @channel or anyone (escapeText).
	text := escapeText(m.Body)
	if m.Subject != "" {
		text = "*" + escapeText(m.Subject) + "*\n" + text
	}
	if isWebhook(m.To) {
		return s.incomingWebhook(ctx, m.To, text)
	}
	return s.postMessage(ctx, m, text)
}

func isWebhook(to string) bool {
	return strings.HasPrefix(to, "https://") || strings.HasPrefix(to, "http://")
}

func (s *Sender) incomingWebhook(ctx context.Context, hook, text string) (providers.Receipt, error) {
	req, err := jsonRequest(ctx, hook, map[string]any{"text": text, "link_names": false})
	if err != nil {
		return providers.Receipt{}, err
	}
	if _, err := providers.DoHTTP(s.hooks, req, incomingWebhookAPI); err != nil {
		return providers.Receipt{}, err
	}
	return providers.Receipt{ID: "slack webhook ok"}, nil
}

type postMessage struct {
	Channel string `json:"channel"`
	Text    string `json:"text"`
	// LinkNames false: "@channel" and names in the text are not linked.
	LinkNames bool     `json:"link_names"`
	Metadata  metadata `json:"metadata"`
}

type metadata struct {
	EventType    string            `json:"event_type"`
	EventPayload map[string]string `json:"event_payload"`
}

func (s *Sender) postMessage(ctx context.Context, m providers.Message, text string) (providers.Receipt, error) {
	if s.cfg.BotToken == "" {
		return providers.Receipt{}, &providers.Error{Permanent: true,
			Err: fmt.Errorf("chat: the recipient is a channel, which needs %s; or give an incoming webhook URL", EnvBotToken)}
	}
	req, err := jsonRequest(ctx, s.method("chat.postMessage"), postMessage{
		Channel: m.To, Text: text,
		Metadata: metadata{EventType: EventType, EventPayload: map[string]string{"delivery_id": m.DeliveryID}},
	})
	if err != nil {
		return providers.Receipt{}, err
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.BotToken)
	resp, err := providers.DoHTTP(s.client, req, postMessageAPI)
	if err != nil {
		return providers.Receipt{}, err
	}
	var out struct {
		OK      bool   `json:"ok"`
		Error   string `json:"error"`
		TS      string `json:"ts"`
		Channel string `json:"channel"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		return providers.Receipt{}, &providers.Error{MaybeSent: true, Err: fmt.Errorf("chat: unreadable chat.postMessage answer: %w", err)}
	}
	if !out.OK {
		return providers.Receipt{}, classify("chat.postMessage", out.Error, resp.Header, time.Now())
	}
	return receipt(out.Channel, out.TS), nil
}

func receipt(channel, ts string) providers.Receipt {
	return providers.Receipt{ID: "slack " + channel + " ts " + ts}
}

func (s *Sender) method(name string) string {
	return strings.TrimRight(s.cfg.APIURL, "/") + "/" + name
}

func jsonRequest(ctx context.Context, target string, v any) (*http.Request, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &providers.Error{Permanent: true, Err: fmt.Errorf("chat: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(b))
	if err != nil {
		return nil, &providers.Error{Permanent: true, Err: fmt.Errorf("chat: bad URL: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	return req, nil
}
