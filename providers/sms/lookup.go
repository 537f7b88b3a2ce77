package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/onceflow/onceflow/providers"
)

// listAPI is the Messages list. A lookup only reads, so no answer of it is
// a possible send.
var listAPI = providers.API{Name: "sms", Receiver: providers.Deduplicating, Detail: twilioError}

// trialPrefix is what Twilio puts before the body of a message sent from a
// trial account.
const trialPrefix = "Sent from your Twilio trial account - "

type listed struct {
	SID                 string `json:"sid"`
	To                  string `json:"to"`
	From                string `json:"from"`
	Body                string `json:"body"`
	Direction           string `json:"direction"`
	DateCreated         string `json:"date_created"`
	MessagingServiceSID string `json:"messaging_service_sid"`
}

// Lookup lists the account's messages to m.To from this sender and looks
// for one created since since with m's body: found means an earlier
// attempt created it, and its SID is the receipt.
//
// The list is filtered by To, and by From when the sender is a number or
// sender ID; a Messaging Service picks the From of each message itself,
// so then the messages are matched on their messaging_service_sid. The
// DateSent filter is not used: a message still queued has no date_sent
// yet, and it is exactly the one a lookup must not miss. Every page is
// read until the message is found or the list ends; running out of ctx
// first is an error, never "not found".
func (s *Sender) Lookup(ctx context.Context, m providers.Message, since time.Time) (providers.Receipt, bool, error) {
	q := url.Values{"To": {m.To}, "PageSize": {"1000"}}
	if !s.viaService() {
		q.Set("From", s.cfg.From)
	}
	next := s.messagesURL() + "?" + q.Encode()
	since = since.Truncate(time.Second) // date_created has seconds only
	for next != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return providers.Receipt{}, false, &providers.Error{Permanent: true, Err: fmt.Errorf("sms: %w", err)}
		}
		s.authorize(req)
		resp, err := providers.DoHTTP(s.client, req, listAPI)
		if err != nil {
			pe := providers.Classify(err)
			return providers.Receipt{}, false, &providers.Error{Permanent: pe.Permanent, RetryAfter: pe.RetryAfter,
				Err: fmt.Errorf("sms: list messages: %w", err)}
		}
		var page struct {
			Messages    []listed `json:"messages"`
			NextPageURI string   `json:"next_page_uri"`
		}
		if err := json.Unmarshal(resp.Body, &page); err != nil {
			return providers.Receipt{}, false, &providers.Error{Err: fmt.Errorf("sms: unreadable list of messages: %w", err)}
		}
		for _, msg := range page.Messages {
			ok, err := s.matches(msg, m, since)
			if err != nil {
				return providers.Receipt{}, false, err
			}
			if ok {
				return providers.Receipt{ID: msg.SID}, true, nil
			}
		}
		next = ""
		if page.NextPageURI != "" {
			next = strings.TrimRight(s.cfg.BaseURL, "/") + page.NextPageURI
		}
	}
	return providers.Receipt{}, false, nil
}

// matches says whether msg is the message Send created for m since since.
func (s *Sender) matches(msg listed, m providers.Message, since time.Time) (bool, error) {
	if !strings.HasPrefix(msg.Direction, "outbound") || msg.To != m.To {
		return false, nil
	}
	if s.viaService() && msg.MessagingServiceSID != s.cfg.From || !s.viaService() && msg.From != s.cfg.From {
		return false, nil
	}
	if msg.Body != m.Body && msg.Body != trialPrefix+m.Body {
		return false, nil
	}
	created, err := time.Parse(time.RFC1123Z, msg.DateCreated)
	if err != nil {
		// A message that matches in all else and cannot be dated: not
		// knowing whether it is ours, the lookup cannot say "not found".
		return false, &providers.Error{Err: fmt.Errorf("sms: message %s has an unreadable date_created %q", msg.SID, msg.DateCreated)}
	}
	return !created.Before(since), nil
}
