package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/onceflow/onceflow/providers"
)

// historyAPI is conversations.history. A lookup only reads, so no answer
// of it is a possible send; DoHTTP's MaybeSent is dropped.
var historyAPI = providers.API{Name: "chat", Receiver: providers.Deduplicating}

// historyPage is how many messages one conversations.history call asks
// for (Slack recommends no more than 200).
const historyPage = 200

// Lookup looks the channel in m.To up for the message chat.postMessage
// posted for m: the one whose metadata carries m's delivery ID, posted
// since since. It pages through the channel's history until the message
// is found or the history since then is exhausted; running out of ctx
// first is an error, never "not found".
//
// Incoming webhooks have no history to read, and Slack's history needs a
// conversation ID (C…, G…, D…): other recipients give ErrNoLookup. The bot
// needs the history scope of the conversation's type (channels:history,
// groups:history, im:history); without it the lookup fails permanently and
// the delivery stays ambiguous.
func (s *Sender) Lookup(ctx context.Context, m providers.Message, since time.Time) (providers.Receipt, bool, error) {
	if isWebhook(m.To) || s.cfg.BotToken == "" || !isConversationID(m.To) {
		return providers.Receipt{}, false, fmt.Errorf("chat: %w: only channel IDs posted to with chat.postMessage have a history", providers.ErrNoLookup)
	}
	oldest := strconv.FormatFloat(float64(since.UnixMicro())/1e6, 'f', 6, 64)
	cursor := ""
	for {
		q := url.Values{"channel": {m.To}, "oldest": {oldest}, "include_all_metadata": {"true"}, "limit": {strconv.Itoa(historyPage)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.method("conversations.history")+"?"+q.Encode(), nil)
		if err != nil {
			return providers.Receipt{}, false, &providers.Error{Permanent: true, Err: fmt.Errorf("chat: %w", err)}
		}
		req.Header.Set("Authorization", "Bearer "+s.cfg.BotToken)
		resp, err := providers.DoHTTP(s.client, req, historyAPI)
		if err != nil {
			pe := providers.Classify(err)
			return providers.Receipt{}, false, &providers.Error{Permanent: pe.Permanent, RetryAfter: pe.RetryAfter,
				Err: fmt.Errorf("chat: conversations.history: %w", err)}
		}
		var page struct {
			OK       bool   `json:"ok"`
			Error    string `json:"error"`
			Messages []struct {
				TS       string   `json:"ts"`
				Metadata metadata `json:"metadata"`
			} `json:"messages"`
			HasMore          bool `json:"has_more"`
			ResponseMetadata struct {
				NextCursor string `json:"next_cursor"`
			} `json:"response_metadata"`
		}
		if err := json.Unmarshal(resp.Body, &page); err != nil {
			return providers.Receipt{}, false, &providers.Error{Err: fmt.Errorf("chat: unreadable conversations.history answer: %w", err)}
		}
		if !page.OK {
			pe := classify("conversations.history", page.Error, resp.Header, time.Now())
			pe.MaybeSent = false
			return providers.Receipt{}, false, pe
		}
		for _, msg := range page.Messages {
			if msg.Metadata.EventType == EventType && msg.Metadata.EventPayload["delivery_id"] == m.DeliveryID {
				return receipt(m.To, msg.TS), true, nil
			}
		}
		if !page.HasMore {
			return providers.Receipt{}, false, nil
		}
		if cursor = page.ResponseMetadata.NextCursor; cursor == "" {
			return providers.Receipt{}, false, &providers.Error{Err: fmt.Errorf("chat: conversations.history has more messages but gave no cursor")}
		}
	}
}

// isConversationID says whether to is a Slack conversation ID: a public
// (C) or private (G) channel or a direct message (D).
func isConversationID(to string) bool {
	if len(to) < 2 || (to[0] != 'C' && to[0] != 'G' && to[0] != 'D') {
		return false
	}
	for _, r := range to[1:] {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
