package sms_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/sms"
)

const service = "MG9752274e9e519418a7406176694466fa"

// messageList is a local Messages list: it answers GET Messages.json with
// pages as Twilio shapes them, and records the queries.
type messageList struct {
	pages   []string
	code    int
	queries []url.Values
}

func (l *messageList) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if user, pass, ok := r.BasicAuth(); !ok || user != "AC123" || pass != "token" || r.Method != http.MethodGet ||
		r.URL.Path != "/2010-04-01/Accounts/AC123/Messages.json" {
		w.WriteHeader(401)
		_, _ = w.Write([]byte(`{"code":20003,"message":"Authenticate","status":401}`))
		return
	}
	l.queries = append(l.queries, r.URL.Query())
	w.Header().Set("Content-Type", "application/json")
	if l.code != 0 {
		w.WriteHeader(l.code)
		_, _ = w.Write([]byte(`{"code":20500,"message":"Internal Server Error","status":500}`))
		return
	}
	page := 0
	if r.URL.Query().Get("Page") == "1" {
		page = 1
	}
	_, _ = w.Write([]byte(l.pages[page]))
}

func lookupSender(t *testing.T, from string, l *messageList) *sms.Sender {
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	s, err := sms.New(sms.Config{AccountSID: "AC123", AuthToken: "token", From: from, BaseURL: srv.URL})
	require.NoError(t, err)
	return s
}

func listed(sid, from, svc, body, created string) string {
	return `{"sid":"` + sid + `","to":"+447700900123","from":"` + from + `","messaging_service_sid":` + svc +
		`,"body":"` + body + `","direction":"outbound-api","status":"queued","date_sent":null,"date_created":"` + created + `"}`
}

func TestLookup(t *testing.T) {
	since := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	m := msg()
	older := listed("SMold", "+15005550006", "null", m.Body, "Mon, 02 Mar 2026 09:59:58 +0000")
	otherBody := listed("SMother", "+15005550006", "null", "Your code is 999999", "Mon, 02 Mar 2026 10:00:03 +0000")
	ours := listed("SMours", "+15005550006", "null", m.Body, "Mon, 02 Mar 2026 10:00:04 +0000")
	page := func(next string, msgs ...string) string {
		out := `{"messages":[`
		for i, s := range msgs {
			if i > 0 {
				out += ","
			}
			out += s
		}
		uri := "null"
		if next != "" {
			uri = `"` + next + `"`
		}
		return out + `],"next_page_uri":` + uri + `}`
	}
	const next = "/2010-04-01/Accounts/AC123/Messages.json?To=%2B447700900123&From=%2B15005550006&PageSize=1000&Page=1&PageToken=PAx"

	t.Run("found on the second page", func(t *testing.T) {
		l := &messageList{pages: []string{page(next, otherBody), page("", ours, older)}}
		r, found, err := lookupSender(t, "+15005550006", l).Lookup(context.Background(), m, since)
		require.NoError(t, err)
		assert.True(t, found)
		assert.Equal(t, "SMours", r.ID)
		require.Len(t, l.queries, 2)
		assert.Equal(t, "+447700900123", l.queries[0].Get("To"))
		assert.Equal(t, "+15005550006", l.queries[0].Get("From"))
		assert.Equal(t, "PAx", l.queries[1].Get("PageToken"))
	})
	t.Run("not found: other bodies, and the same body before the attempts began", func(t *testing.T) {
		l := &messageList{pages: []string{page("", otherBody, older)}}
		_, found, err := lookupSender(t, "+15005550006", l).Lookup(context.Background(), m, since)
		require.NoError(t, err)
		assert.False(t, found)
	})
	t.Run("a trial account's prefix", func(t *testing.T) {
		trial := listed("SMtrial", "+15005550006", "null", "Sent from your Twilio trial account - "+m.Body, "Mon, 02 Mar 2026 10:00:04 +0000")
		l := &messageList{pages: []string{page("", trial)}}
		r, found, err := lookupSender(t, "+15005550006", l).Lookup(context.Background(), m, since)
		require.NoError(t, err)
		assert.True(t, found)
		assert.Equal(t, "SMtrial", r.ID)
	})
	t.Run("a messaging service is matched on messaging_service_sid", func(t *testing.T) {
		viaService := listed("SMsvc", "+15005550999", `"`+service+`"`, m.Body, "Mon, 02 Mar 2026 10:00:04 +0000")
		viaOther := listed("SMsvc2", "+15005550999", `"MG00000000000000000000000000000000"`, m.Body, "Mon, 02 Mar 2026 10:00:04 +0000")
		l := &messageList{pages: []string{page("", viaOther, viaService)}}
		r, found, err := lookupSender(t, service, l).Lookup(context.Background(), m, since)
		require.NoError(t, err)
		assert.True(t, found)
		assert.Equal(t, "SMsvc", r.ID)
		assert.NotContains(t, l.queries[0], "From", "a service picks the From itself")

		l = &messageList{pages: []string{page("", viaOther)}}
		_, found, err = lookupSender(t, service, l).Lookup(context.Background(), m, since)
		require.NoError(t, err)
		assert.False(t, found)
	})
	t.Run("error: the list fails", func(t *testing.T) {
		l := &messageList{code: 500}
		_, found, err := lookupSender(t, "+15005550006", l).Lookup(context.Background(), m, since)
		require.Error(t, err)
		assert.False(t, found)
		pe := providers.Classify(err)
		assert.False(t, pe.Permanent, err)
		assert.False(t, pe.MaybeSent, "a lookup sends nothing")
	})
	t.Run("error: an undatable match", func(t *testing.T) {
		l := &messageList{pages: []string{page("", listed("SMx", "+15005550006", "null", m.Body, "yesterday"))}}
		_, found, err := lookupSender(t, "+15005550006", l).Lookup(context.Background(), m, since)
		require.Error(t, err)
		assert.False(t, found)
	})
	t.Run("error: bad credentials are permanent", func(t *testing.T) {
		srv := httptest.NewServer(&messageList{})
		defer srv.Close()
		s, err := sms.New(sms.Config{AccountSID: "AC123", AuthToken: "wrong", From: "+15005550006", BaseURL: srv.URL})
		require.NoError(t, err)
		_, _, err = s.Lookup(context.Background(), m, since)
		assert.True(t, providers.Classify(err).Permanent, err)
	})
}
