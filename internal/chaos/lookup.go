//go:build linux

package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"
)

// stored is one message a Twilio or Slack fake took in, as its list or
// history API shows it.
type stored struct {
	// id is Twilio's message SID, or Slack's ts.
	id         string
	body, from string
	created    time.Time
	// eventType and deliveryID are a Slack message's metadata.
	eventType, deliveryID string
}

// messages is a fake API's record of the messages it took in, per
// recipient (a number, a Slack channel), in the order it took them.
type messages struct {
	mu     sync.Mutex
	byTo   map[string][]stored
	lastTS int64 // Slack ts in microseconds, unique and increasing
}

func newMessages() *messages { return &messages{byTo: map[string][]stored{}} }

func (m *messages) add(to string, s stored) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byTo[to] = append(m.byTo[to], s)
}

// newestFirst returns to's messages, newest first, as both APIs list them.
func (m *messages) newestFirst(to string, keep func(stored) bool) []stored {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []stored
	for _, s := range m.byTo[to] {
		if keep(s) {
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].created.After(out[j].created) })
	return out
}

// slackTS is a Slack message timestamp: seconds and microseconds of now,
// unique within the fake as Slack's are within a channel.
func (m *messages) slackTS() (string, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	us := time.Now().UnixMicro()
	if us <= m.lastTS {
		us = m.lastTS + 1
	}
	m.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6), time.UnixMicro(us)
}

// page cuts one page out of list from the offset in token ("" is 0) and
// returns the next page's token, "" at the end.
func page[T any](list []T, token string, size int) ([]T, string) {
	off, _ := strconv.Atoi(token)
	if off < 0 || off > len(list) {
		off = len(list)
	}
	end := min(off+size, len(list))
	next := ""
	if end < len(list) {
		next = strconv.Itoa(end)
	}
	return list[off:end], next
}

// twilioList is Twilio's GET Messages.json: the account's messages, newest
// first, filtered by To and From, PageSize a page (50 unless given, at
// most 1000), next_page_uri the next page's path and query.
func (a *apiServers) twilioList(w http.ResponseWriter, r *http.Request) {
	sid, token, ok := r.BasicAuth()
	if !ok || sid != twilioSID || token != twilioToken || r.PathValue("sid") != twilioSID {
		a.sms.ledger.refuse("sms: list with bad credentials")
		apiError(w, http.StatusUnauthorized, "")
		return
	}
	q := r.URL.Query()
	to, from := q.Get("To"), q.Get("From")
	if _, ok := a.expectSMS(to); !ok || to == "" {
		a.sms.ledger.refuse("sms: list of messages to %q, not a number of the run", to)
	}
	a.sms.ledger.lookup(to)
	size := 50
	if n, err := strconv.Atoi(q.Get("PageSize")); err == nil && n > 0 {
		size = min(n, 1000)
	}
	all := a.sms.msgs.newestFirst(to, func(s stored) bool { return from == "" || s.from == from })
	list, next := page(all, q.Get("PageToken"), size)
	type msg struct {
		SID                 string  `json:"sid"`
		AccountSID          string  `json:"account_sid"`
		To                  string  `json:"to"`
		From                string  `json:"from"`
		Body                string  `json:"body"`
		Direction           string  `json:"direction"`
		Status              string  `json:"status"`
		DateCreated         string  `json:"date_created"`
		DateSent            *string `json:"date_sent"`
		MessagingServiceSID *string `json:"messaging_service_sid"`
	}
	out := struct {
		Messages    []msg  `json:"messages"`
		Page        int    `json:"page"`
		PageSize    int    `json:"page_size"`
		URI         string `json:"uri"`
		NextPageURI any    `json:"next_page_uri"`
	}{Messages: []msg{}, PageSize: size, URI: r.URL.RequestURI()}
	for _, s := range list {
		out.Messages = append(out.Messages, msg{SID: s.id, AccountSID: twilioSID, To: to, From: s.from, Body: s.body,
			Direction: "outbound-api", Status: "queued", DateCreated: s.created.UTC().Format(time.RFC1123Z)})
	}
	if next != "" {
		nq := url.Values{"To": {to}, "PageSize": {strconv.Itoa(size)}, "PageToken": {next}}
		if from != "" {
			nq.Set("From", from)
		}
		out.NextPageURI = r.URL.Path + "?" + nq.Encode()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// slackHistory is Slack's conversations.history: a channel's messages
// newer than oldest (exclusive), newest first, limit a page (100 unless
// given, at most 999), cursor the next page; a message's metadata only
// with include_all_metadata=true.
func (a *apiServers) slackHistory(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+slackToken {
		a.chat.ledger.refuse("chat: conversations.history with a bad token")
		_, _ = io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
		return
	}
	q := r.URL.Query()
	channel := q.Get("channel")
	if _, ok := a.expectChat(channel); !ok {
		_, _ = io.WriteString(w, `{"ok":false,"error":"channel_not_found"}`)
		return
	}
	a.chat.ledger.lookup(channel)
	var oldest time.Time
	if o := q.Get("oldest"); o != "" {
		f, err := strconv.ParseFloat(o, 64)
		if err != nil {
			_, _ = io.WriteString(w, `{"ok":false,"error":"invalid_ts_oldest"}`)
			return
		}
		oldest = time.UnixMicro(int64(f*1e6 + 0.5))
	}
	size := 100
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		size = min(n, 999)
	}
	all := a.chat.msgs.newestFirst(channel, func(s stored) bool { return s.created.After(oldest) })
	list, next := page(all, q.Get("cursor"), size)
	meta := q.Get("include_all_metadata") == "true"
	type message struct {
		Type     string `json:"type"`
		User     string `json:"user"`
		Text     string `json:"text"`
		TS       string `json:"ts"`
		Metadata any    `json:"metadata,omitempty"`
	}
	out := struct {
		OK               bool      `json:"ok"`
		Messages         []message `json:"messages"`
		HasMore          bool      `json:"has_more"`
		ResponseMetadata struct {
			NextCursor string `json:"next_cursor"`
		} `json:"response_metadata"`
	}{OK: true, Messages: []message{}, HasMore: next != ""}
	out.ResponseMetadata.NextCursor = next
	for _, s := range list {
		m := message{Type: "message", User: "UCHAOSBOT", Text: s.body, TS: s.id}
		if meta {
			m.Metadata = map[string]any{"event_type": s.eventType, "event_payload": map[string]string{"delivery_id": s.deliveryID}}
		}
		out.Messages = append(out.Messages, m)
	}
	_ = json.NewEncoder(w).Encode(out)
}
