package email

import (
	"net/textproto"
	"regexp"
)

// transientEnhanced are the RFC 3463 enhanced status codes whose
// definitions call the condition a persistent transient failure, so that a
// relay's 5xx reply carrying one is retried rather than taken as final:
// X.2.2 mailbox full, X.3.1 mail system full, X.4.5 mail system
// congestion, X.5.3 too many recipients.
var transientEnhanced = map[string]bool{"2.2": true, "3.1": true, "4.5": true, "5.3": true}

// enhancedCode matches the enhanced status code (RFC 3463, RFC 2034) at
// the start of a reply's text: class.subject.detail.
var enhancedCode = regexp.MustCompile(`^([245])\.(\d{1,3}\.\d{1,3})\b`)

// permanentReply says whether reply, the relay's answer at step, refuses
// the message for good. The reply code's class decides (RFC 5321 4.2.1:
// 4yz transient, 5yz permanent), with two exceptions the RFCs make:
//
//   - RFC 5321 4.5.3.1.10: a 552 reply to RCPT TO means too many
//     recipients, which RFC 821 miscoded; clients treat it as the 452 it
//     should have been.
//   - RFC 3463: a 5xx reply whose enhanced code names a condition defined
//     as persistent transient (transientEnhanced) is retried.
func permanentReply(step string, reply *textproto.Error) bool {
	if reply.Code/100 != 5 {
		return false
	}
	if reply.Code == 552 && step == "RCPT TO" {
		return false
	}
	if m := enhancedCode.FindStringSubmatch(reply.Msg); m != nil && transientEnhanced[m[2]] {
		return false
	}
	return true
}
