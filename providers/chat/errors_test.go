package chat_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
)

// Every row of the Web API error table in docs/channels.md, answered by a
// local Slack as Slack answers it: HTTP 200 and "ok": false.
func TestPostMessageErrorTable(t *testing.T) {
	const (
		permanent = iota
		retry
		maybeSent
	)
	rows := []struct {
		code       string
		outcome    int
		retryAfter string
		wait       time.Duration
	}{
		// "It's possible some aspect of the operation succeeded."
		{code: "internal_error", outcome: maybeSent},
		{code: "fatal_error", outcome: maybeSent},
		// A code Slack does not document: held, then looked up.
		{code: "some_new_error", outcome: maybeSent},

		{code: "ratelimited", outcome: retry, retryAfter: "7", wait: 7 * time.Second},
		{code: "rate_limited", outcome: retry, retryAfter: "12", wait: 12 * time.Second},
		{code: "rate_limited", outcome: retry, wait: time.Minute},
		{code: "ratelimited", outcome: retry, wait: time.Minute},
		{code: "message_limit_exceeded", outcome: retry},
		{code: "service_unavailable", outcome: retry},
		{code: "request_timeout", outcome: retry},
		{code: "team_added_to_org", outcome: retry},
		{code: "org_login_required", outcome: retry},

		{code: "access_denied"}, {code: "accesslimited"}, {code: "account_inactive"},
		{code: "deprecated_endpoint"}, {code: "ekm_access_denied"}, {code: "enterprise_is_restricted"},
		{code: "invalid_arg_name"}, {code: "invalid_arguments"}, {code: "invalid_array_arg"},
		{code: "invalid_auth"}, {code: "invalid_charset"}, {code: "invalid_form_data"},
		{code: "invalid_post_type"}, {code: "method_deprecated"}, {code: "missing_post_type"},
		{code: "missing_scope"}, {code: "no_permission"}, {code: "not_allowed_token_type"},
		{code: "not_authed"}, {code: "token_expired"}, {code: "token_revoked"},
		{code: "two_factor_setup_required"},
		{code: "as_user_not_supported"}, {code: "attachment_payload_limit_exceeded"},
		{code: "cannot_reply_to_message"}, {code: "channel_not_found"},
		{code: "duplicate_channel_not_found"}, {code: "duplicate_message_not_found"},
		{code: "invalid_blocks"}, {code: "invalid_blocks_format"},
		{code: "invalid_metadata_format"}, {code: "invalid_metadata_schema"},
		{code: "is_archived"}, {code: "messages_tab_disabled"},
		{code: "metadata_must_be_sent_from_app"}, {code: "metadata_too_large"},
		{code: "msg_blocks_too_long"}, {code: "msg_too_long"}, {code: "no_text"},
		{code: "not_in_channel"}, {code: "restricted_action"},
		{code: "restricted_action_non_threadable_channel"}, {code: "restricted_action_read_only_channel"},
		{code: "restricted_action_thread_locked"}, {code: "restricted_action_thread_only_channel"},
		{code: "slack_connect_canvas_sharing_blocked"}, {code: "slack_connect_file_link_sharing_blocked"},
		{code: "slack_connect_lists_sharing_blocked"}, {code: "team_access_not_granted"},
		{code: "too_many_attachments"}, {code: "too_many_contact_cards"},
	}
	for _, r := range rows {
		t.Run(r.code+" "+r.retryAfter, func(t *testing.T) {
			sl, _, s := newSlack(t, "xoxb-test")
			sl.apiAnswer = func() (int, string, string) {
				return 200, `{"ok":false,"error":"` + r.code + `"}`, r.retryAfter
			}
			_, err := s.Send(context.Background(), msg("C123"))
			require.Error(t, err)
			pe := providers.Classify(err)
			assert.Equal(t, r.outcome == permanent, pe.Permanent, "permanent: %v", err)
			assert.Equal(t, r.outcome == maybeSent, pe.MaybeSent, "may have been posted: %v", err)
			assert.Equal(t, r.wait, pe.RetryAfter, err)
			assert.Contains(t, err.Error(), r.code)
		})
	}
}

// history answers conversations.history with pages of messages, the
// second page reached by cursor.
func history(pages ...string) func(url.Values) (int, string, string) {
	return func(q url.Values) (int, string, string) {
		i := 0
		if q.Get("cursor") == "page2" {
			i = 1
		}
		return 200, pages[i], ""
	}
}

func TestLookup(t *testing.T) {
	since := time.Unix(1700000000, 500000000)
	ours := `{"ts":"1700000100.000200","text":"x","metadata":{"event_type":"onceflow_delivery","event_payload":{"delivery_id":"dlv_1"}}}`
	other := `{"ts":"1700000050.000100","text":"x","metadata":{"event_type":"onceflow_delivery","event_payload":{"delivery_id":"dlv_2"}}}`
	plain := `{"ts":"1700000040.000100","text":"hello"}`
	page1 := `{"ok":true,"messages":[` + other + `,` + plain + `],"has_more":true,"response_metadata":{"next_cursor":"page2"}}`

	t.Run("found on the second page", func(t *testing.T) {
		sl, _, s := newSlack(t, "xoxb-test")
		var queries []url.Values
		pages := history(page1, `{"ok":true,"messages":[`+ours+`],"has_more":false}`)
		sl.history = func(q url.Values) (int, string, string) { queries = append(queries, q); return pages(q) }
		r, found, err := s.Lookup(context.Background(), msg("C123"), since)
		require.NoError(t, err)
		assert.True(t, found)
		assert.Equal(t, "slack C123 ts 1700000100.000200", r.ID)
		require.Len(t, queries, 2)
		assert.Equal(t, "C123", queries[0].Get("channel"))
		assert.Equal(t, "1700000000.500000", queries[0].Get("oldest"))
		assert.Equal(t, "true", queries[0].Get("include_all_metadata"))
		assert.Equal(t, "page2", queries[1].Get("cursor"))
	})
	t.Run("not found", func(t *testing.T) {
		sl, _, s := newSlack(t, "xoxb-test")
		sl.history = history(page1, `{"ok":true,"messages":[],"has_more":false}`)
		_, found, err := s.Lookup(context.Background(), msg("C123"), since)
		require.NoError(t, err)
		assert.False(t, found)
	})
	for _, c := range []struct {
		name      string
		code      int
		body      string
		permanent bool
		wait      time.Duration
	}{
		{"missing history scope", 200, `{"ok":false,"error":"missing_scope","needed":"channels:history"}`, true, 0},
		{"rate limited", 429, `{"ok":false,"error":"ratelimited"}`, false, 3 * time.Second},
		{"internal_error", 200, `{"ok":false,"error":"internal_error"}`, false, 0},
		{"500", 500, `oops`, false, 0},
		{"more pages without a cursor", 200, `{"ok":true,"messages":[],"has_more":true}`, false, 0},
		{"unreadable", 200, `{"ok":tr`, false, 0},
	} {
		t.Run("error: "+c.name, func(t *testing.T) {
			sl, _, s := newSlack(t, "xoxb-test")
			sl.history = func(url.Values) (int, string, string) { return c.code, c.body, "3" }
			_, found, err := s.Lookup(context.Background(), msg("C123"), since)
			require.Error(t, err)
			assert.False(t, found)
			pe := providers.Classify(err)
			assert.Equal(t, c.permanent, pe.Permanent, err)
			assert.False(t, pe.MaybeSent, "a lookup sends nothing")
			if c.wait > 0 {
				assert.Equal(t, c.wait, pe.RetryAfter)
			}
		})
	}
	t.Run("cut short by its context", func(t *testing.T) {
		sl, _, s := newSlack(t, "xoxb-test")
		sl.history = func(url.Values) (int, string, string) {
			time.Sleep(300 * time.Millisecond)
			return 200, `{"ok":true,"messages":[],"has_more":false}`, ""
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, found, err := s.Lookup(ctx, msg("C123"), since)
		assert.Error(t, err, "a lookup that ran out of time is not \"not found\"")
		assert.False(t, found)
	})
	t.Run("incoming webhooks and channel names cannot be looked up", func(t *testing.T) {
		_, srv, s := newSlack(t, "xoxb-test")
		for _, to := range []string{srv.URL + "/services/T1/B1/x", "#general"} {
			_, _, err := s.Lookup(context.Background(), msg(to), since)
			assert.ErrorIs(t, err, providers.ErrNoLookup, to)
		}
	})
}
