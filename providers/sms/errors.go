package sms

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/onceflow/onceflow/providers"
)

// queueFullWait is the wait after error 21611: the sender's queue holds
// hours of messages and drains at the sender's rate, so there is no point
// in asking again at once.
const queueFullWait = time.Minute

// temporary lists the Twilio error codes, answered with a 4xx, that say the
// message was not created but may be on a later try (twilio.com/docs/api/errors).
// Every other 4xx code is permanent (21211 invalid To, 21610 unsubscribed,
// ...); 429 (20429) and 503 (20503) are retried by their HTTP status, and
// 500, 502 and 504 may have sent (see providers.ClassifyHTTPStatus).
var temporary = map[int]time.Duration{
	// "This 'From' number has exceeded the maximum number of queued
	// messages": the queue drains by itself.
	21611: queueFullWait,
}

// classify refines DoHTTP's classification of a failed create by Twilio's
// error code in body.
func classify(body []byte, err error) error {
	pe := providers.Classify(err)
	if !pe.Permanent {
		return err
	}
	if wait, ok := temporary[twilioCode(body)]; ok {
		pe.Permanent = false
		pe.RetryAfter = max(pe.RetryAfter, wait)
	}
	return pe
}

type twilioBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func twilioCode(body []byte) int {
	var e twilioBody
	_ = json.Unmarshal(body, &e)
	return e.Code
}

// twilioError reads Twilio's error body: {"code": 21211, "message": ...}.
func twilioError(body []byte) string {
	var e twilioBody
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	return fmt.Sprintf("Twilio error %d: %s", e.Code, e.Message)
}
