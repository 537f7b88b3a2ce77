package sms_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/internal/wiretest"
	"github.com/onceflow/onceflow/providers/sms"
)

// twilio is a local server speaking the Messages API's request and error
// shapes.
type twilio struct {
	mu   sync.Mutex
	got  []http.Request
	form []map[string]string
	// answer gives the status and JSON body of the nth request (from 1).
	answer func(n int) (int, string, string)
}

func (tw *twilio) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	tw.mu.Lock()
	tw.got = append(tw.got, *r)
	f := map[string]string{}
	for k := range r.PostForm {
		f[k] = r.PostForm.Get(k)
	}
	tw.form = append(tw.form, f)
	n := len(tw.got)
	tw.mu.Unlock()
	user, pass, ok := r.BasicAuth()
	if !ok || user != "AC123" || pass != "token" {
		w.WriteHeader(401)
		_, _ = w.Write([]byte(`{"code":20003,"message":"Authenticate","status":401}`))
		return
	}
	if r.URL.Path != "/2010-04-01/Accounts/AC123/Messages.json" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		w.WriteHeader(404)
		return
	}
	code, body, retryAfter := 201, `{"sid":"SM0001","status":"queued"}`, ""
	if tw.answer != nil {
		code, body, retryAfter = tw.answer(n)
	}
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

func newTwilio(t *testing.T, answer func(int) (int, string, string)) (*twilio, *sms.Sender) {
	tw := &twilio{answer: answer}
	srv := httptest.NewServer(tw)
	t.Cleanup(srv.Close)
	s, err := sms.New(sms.Config{AccountSID: "AC123", AuthToken: "token", From: "+15005550006", BaseURL: srv.URL})
	require.NoError(t, err)
	return tw, s
}

func msg() providers.Message {
	return providers.Message{DeliveryID: "dlv_1", Key: "otp-1", To: "+447700900123", Body: "Your code is 123456", Timestamp: time.Now()}
}

func TestSendPostsTheMessagesAPIForm(t *testing.T) {
	tw, s := newTwilio(t, nil)
	receipt, err := s.Send(context.Background(), msg())
	require.NoError(t, err)
	assert.Equal(t, "SM0001", receipt.ID)
	require.Len(t, tw.form, 1)
	assert.Equal(t, map[string]string{"To": "+447700900123", "From": "+15005550006", "Body": "Your code is 123456"}, tw.form[0])
}

// A sender is a Messaging Service only when it has the form of one
// (^MG[0-9a-fA-F]{32}$); an alphanumeric sender ID that starts with MG is a
// From.
func TestMessagingServiceSID(t *testing.T) {
	for _, c := range []struct {
		from    string
		service bool
	}{
		{"MG9752274e9e519418a7406176694466fa", true},
		{"MGAB52274E9E519418A7406176694466FA", true},
		{"MGM Resort", false},
		{"MGMResort", false},
		{"MG9752274e9e519418a7406176694466f", false},
		{"+15005550006", false},
	} {
		t.Run(c.from, func(t *testing.T) {
			tw := &twilio{}
			srv := httptest.NewServer(tw)
			defer srv.Close()
			s, err := sms.New(sms.Config{AccountSID: "AC123", AuthToken: "token", From: c.from, BaseURL: srv.URL})
			require.NoError(t, err)
			_, err = s.Send(context.Background(), msg())
			require.NoError(t, err)
			if c.service {
				assert.Equal(t, c.from, tw.form[0]["MessagingServiceSid"])
				assert.NotContains(t, tw.form[0], "From")
			} else {
				assert.Equal(t, c.from, tw.form[0]["From"])
				assert.NotContains(t, tw.form[0], "MessagingServiceSid")
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		name       string
		code       int
		body       string
		retryAfter string
		permanent  bool
		wait       time.Duration
		says       string
	}{
		{"invalid number", 400, `{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}`, "", true, 0, "21211"},
		{"unsubscribed", 400, `{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}`, "", true, 0, "21610"},
		{"too many requests", 429, `{"code":20429,"message":"Too Many Requests","status":429}`, "3", false, 3 * time.Second, "20429"},
		{"unavailable", 503, ``, "", false, 0, "503"},
		{"queue full", 400, `{"code":21611,"message":"This 'From' number has exceeded the maximum number of queued messages","status":400}`, "", false, time.Minute, "21611"},
		{"invalid From", 400, `{"code":21212,"message":"The 'From' number is not a valid phone number, shortcode, or alphanumeric sender ID.","status":400}`, "", true, 0, "21212"},
		{"region not enabled", 400, `{"code":21408,"message":"Permission to send an SMS has not been enabled for the region","status":400}`, "", true, 0, "21408"},
		{"no body", 400, `{"code":21602,"message":"Message body is required.","status":400}`, "", true, 0, "21602"},
		{"no To", 400, `{"code":21604,"message":"A 'To' phone number is required.","status":400}`, "", true, 0, "21604"},
		{"From not SMS capable", 400, `{"code":21606,"message":"The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account","status":400}`, "", true, 0, "21606"},
		{"trial unverified", 400, `{"code":21608,"message":"The number is unverified. Trial accounts cannot send messages to unverified numbers","status":400}`, "", true, 0, "21608"},
		{"unreachable", 400, `{"code":21612,"message":"The 'To' phone number is not currently reachable using the 'From' phone number via SMS.","status":400}`, "", true, 0, "21612"},
		{"not mobile", 400, `{"code":21614,"message":"'To' number is not a valid mobile number","status":400}`, "", true, 0, "21614"},
		{"too long", 400, `{"code":21617,"message":"The concatenated message body exceeds the 1600 character limit.","status":400}`, "", true, 0, "21617"},
		{"account not found", 404, `{"code":20404,"message":"The requested resource was not found","status":404}`, "", true, 0, "20404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, s := newTwilio(t, func(int) (int, string, string) { return c.code, c.body, c.retryAfter })
			_, err := s.Send(context.Background(), msg())
			pe := providers.Classify(err)
			assert.Equal(t, c.permanent, pe.Permanent, err)
			assert.False(t, pe.MaybeSent, "Twilio answered: it did not send")
			assert.Equal(t, c.wait, pe.RetryAfter)
			assert.Contains(t, err.Error(), c.says)
		})
	}
	t.Run("bad credentials", func(t *testing.T) {
		tw := &twilio{}
		srv := httptest.NewServer(tw)
		defer srv.Close()
		s, err := sms.New(sms.Config{AccountSID: "AC123", AuthToken: "wrong", From: "+15005550006", BaseURL: srv.URL})
		require.NoError(t, err)
		_, err = s.Send(context.Background(), msg())
		assert.True(t, providers.Classify(err).Permanent)
		assert.NotContains(t, err.Error(), "wrong")
	})
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	for cfg, v := range map[sms.Config]string{
		{AuthToken: "t", From: "+1"}:                                         sms.EnvAccountSID,
		{AccountSID: "AC", From: "+1"}:                                       sms.EnvAuthToken,
		{AccountSID: "AC", AuthToken: "t"}:                                   sms.EnvFrom,
		{AccountSID: "AC", AuthToken: "t", From: "+1", BaseURL: "not a url"}: sms.EnvBaseURL,
	} {
		_, err := sms.New(cfg)
		assert.ErrorContains(t, err, v)
	}
}

// TestWhatWentOverTheWire: whether a failed send may have texted someone is
// decided from what reached Twilio. Twilio takes no idempotency key, so a
// 500, 502 or 504 (Twilio's gateway may have passed the request on) may
// have sent, like a failure after the whole request was written.
func TestWhatWentOverTheWire(t *testing.T) {
	fault := func(h http.HandlerFunc) func(*testing.T) string {
		return func(t *testing.T) string { return wiretest.Serve(t, h) }
	}
	answer := func(code int, body, retryAfter string) func(*testing.T) string {
		return func(t *testing.T) string {
			srv := httptest.NewServer(&twilio{answer: func(int) (int, string, string) { return code, body, retryAfter }})
			t.Cleanup(srv.Close)
			return srv.URL
		}
	}
	rows := []struct {
		name      string
		baseURL   func(*testing.T) string
		large     bool
		maybeSent bool
		wait      time.Duration
	}{
		{"connection refused", func(t *testing.T) string { return wiretest.Refused(t) }, false, false, 0},
		{"reset before the body was read", fault(wiretest.ResetBeforeBody), true, false, 0},
		{"reset after the request was read", fault(wiretest.ResetAfterBody), false, true, 0},
		{"no answer after the request was read", fault(wiretest.Silent), false, true, 0},
		{"500", answer(500, `{"code":20500,"message":"Internal Server Error","status":500}`, ""), false, true, 0},
		{"502", answer(502, `{"code":20502,"message":"Bad Gateway","status":502}`, ""), false, true, 0},
		{"504", answer(504, `{"code":20504,"message":"Gateway Timeout","status":504}`, ""), false, true, 0},
		{"408", answer(408, `{"code":20408,"message":"Request Timeout","status":408}`, "5"), false, false, 5 * time.Second},
		{"429", answer(429, `{"code":20429,"message":"Too Many Requests","status":429}`, "3"), false, false, 3 * time.Second},
		{"503", answer(503, `{"code":20503,"message":"Service Unavailable","status":503}`, "90"), false, false, 90 * time.Second},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			s, err := sms.New(sms.Config{AccountSID: "AC123", AuthToken: "token", From: "+15005550006", BaseURL: r.baseURL(t)})
			require.NoError(t, err)
			wiretest.Send(t, s, msg(), r.large, r.maybeSent, r.wait)
		})
	}
}
