package chat

import (
	"fmt"
	"net/http"
	"time"

	"github.com/onceflow/onceflow/providers"
)

// outcome is what a Web API error code (HTTP 200, "ok": false) says about
// the call that got it.
type outcome int

const (
	// permanent: not performed, and the same call cannot succeed.
	permanent outcome = iota
	// retry: not performed; the same call may succeed later.
	retry
	// maybePerformed: Slack says some part of the call may have succeeded
	// before it failed.
	maybePerformed
)

// rateLimitWait is the wait after a rate-limit error whose answer has no
// Retry-After: Slack counts its Web API tiers per minute.
const rateLimitWait = time.Minute

// webAPIErrors classifies the error codes of chat.postMessage and
// conversations.history, and the errors common to every Web API method,
// as Slack documents them (docs.slack.dev/reference/methods/chat.postMessage,
// .../conversations.history; docs/channels.md lists them with their
// sources). An error code not listed here is treated as maybePerformed:
// Slack may add codes, and a delivery held (and then looked up) is safer
// than a second message.
var webAPIErrors = map[string]outcome{
	// Performed in part, perhaps (common errors): "It's possible some
	// aspect of the operation succeeded before the error was raised."
	"internal_error": maybePerformed,
	"fatal_error":    maybePerformed,

	// Temporary: nothing was done.
	"ratelimited":            retry, // common; Retry-After says when
	"rate_limited":           retry, // chat.postMessage: posted too many messages
	"message_limit_exceeded": retry, // a free workspace's members sent too many messages
	"service_unavailable":    retry,
	"request_timeout":        retry, // the POST body was missing or truncated on the way
	"team_added_to_org":      retry, // the workspace is migrating to an Enterprise org
	"org_login_required":     retry, // likewise

	// Permanent: the request, the token or the channel is wrong.
	"access_denied":             permanent,
	"accesslimited":             permanent,
	"account_inactive":          permanent,
	"deprecated_endpoint":       permanent,
	"ekm_access_denied":         permanent,
	"enterprise_is_restricted":  permanent,
	"invalid_arg_name":          permanent,
	"invalid_arguments":         permanent,
	"invalid_array_arg":         permanent,
	"invalid_auth":              permanent,
	"invalid_charset":           permanent,
	"invalid_form_data":         permanent,
	"invalid_post_type":         permanent,
	"method_deprecated":         permanent,
	"missing_post_type":         permanent,
	"missing_scope":             permanent,
	"no_permission":             permanent,
	"not_allowed_token_type":    permanent,
	"not_authed":                permanent,
	"token_expired":             permanent,
	"token_revoked":             permanent,
	"two_factor_setup_required": permanent,
	// chat.postMessage
	"as_user_not_supported":                    permanent,
	"attachment_payload_limit_exceeded":        permanent,
	"cannot_reply_to_message":                  permanent,
	"channel_not_found":                        permanent,
	"duplicate_channel_not_found":              permanent,
	"duplicate_message_not_found":              permanent,
	"invalid_blocks":                           permanent,
	"invalid_blocks_format":                    permanent,
	"invalid_metadata_format":                  permanent,
	"invalid_metadata_schema":                  permanent,
	"is_archived":                              permanent,
	"messages_tab_disabled":                    permanent,
	"metadata_must_be_sent_from_app":           permanent,
	"metadata_too_large":                       permanent,
	"msg_blocks_too_long":                      permanent,
	"msg_too_long":                             permanent,
	"no_text":                                  permanent,
	"not_in_channel":                           permanent,
	"restricted_action":                        permanent,
	"restricted_action_non_threadable_channel": permanent,
	"restricted_action_read_only_channel":      permanent,
	"restricted_action_thread_locked":          permanent,
	"restricted_action_thread_only_channel":    permanent,
	"slack_connect_canvas_sharing_blocked":     permanent,
	"slack_connect_file_link_sharing_blocked":  permanent,
	"slack_connect_lists_sharing_blocked":      permanent,
	"team_access_not_granted":                  permanent,
	"too_many_attachments":                     permanent,
	"too_many_contact_cards":                   permanent,
	// conversations.history
	"invalid_cursor":    permanent,
	"invalid_ts_latest": permanent,
	"invalid_ts_oldest": permanent,
}

// classify turns a Web API error code from method into a *providers.Error.
func classify(method, code string, header http.Header, now time.Time) *providers.Error {
	code = providers.Excerpt(code)
	err := &providers.Error{Err: fmt.Errorf("chat: %s: %s", method, code)}
	o, known := webAPIErrors[code]
	switch {
	case !known:
		err.MaybeSent = true
		err.Err = fmt.Errorf("chat: %s: %s (an error Slack does not document; it may have been performed)", method, code)
	case o == permanent:
		err.Permanent = true
	case o == maybePerformed:
		err.MaybeSent = true
		err.Err = fmt.Errorf("chat: %s: %s (Slack: some part of it may have succeeded)", method, code)
	case code == "ratelimited" || code == "rate_limited":
		err.RetryAfter = providers.ParseRetryAfter(header.Get("Retry-After"), now)
		if err.RetryAfter == 0 {
			err.RetryAfter = rateLimitWait
		}
	default:
		err.RetryAfter = providers.ParseRetryAfter(header.Get("Retry-After"), now)
	}
	return err
}
