//go:build linux

package chaos

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/onceflow/onceflow/internal/receiver"
)

// Credentials of the fake APIs: what the workers are configured with and
// what the fakes accept.
const (
	twilioSID   = "ACchaos0000000000000000000000000"
	twilioToken = "chaos-twilio-token"
	twilioFrom  = "+15005550006"
	slackToken  = "xoxb-chaos-bot-token"
	fcmProject  = "chaos-project"
	fcmAccess   = "ya29.chaos-access-token"
)

// apiFake is what the Twilio, FCM and Slack fakes share: each request's
// fault from the plan, and the ledger of what the recipient got.
type apiFake struct {
	channel string
	plan    plan
	slowBy  time.Duration
	ledger  *ledger
	seq     atomic.Int64
	// msgs are the messages it took in, for its list or history API
	// (Twilio, Slack; nil for FCM).
	msgs *messages
}

// answer treats one request for ident (a phone number, a device token, a
// chat channel) as its planned fault says. apply takes the request in;
// ok writes the API's success answer.
func (f *apiFake) answer(w http.ResponseWriter, r *http.Request, ident string, apply func(), ok func(http.ResponseWriter)) {
	n := f.ledger.request(ident)
	fault := f.plan.http(f.channel, ident, n)
	f.ledger.fault(ident, fault)
	switch fault {
	case fault500:
		apiError(w, http.StatusInternalServerError, "")
		return
	case fault429:
		apiError(w, http.StatusTooManyRequests, "1")
		return
	}
	apply()
	switch fault {
	case faultApplied5xx:
		apiError(w, f.plan.appliedStatus(f.channel, ident, n), "")
		return
	case faultReset:
		receiver.Reset(w)
		return
	case faultSlow:
		select {
		case <-time.After(f.slowBy):
		case <-r.Context().Done():
			return
		}
	}
	ok(w)
}

func apiError(w http.ResponseWriter, status int, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The fakes' answers, here and below, are dropped as their
	// io.WriteString ones are: a write fails only when the client has gone,
	// and the client sees that for itself.
	_, _ = fmt.Fprintf(w, `{"code":%d,"message":"chaos: %s","status":%d}`, 20000+status, http.StatusText(status), status)
}

// apiServers are local servers speaking the Twilio Messages, Slack
// chat.postMessage, Google OAuth token and FCM HTTP v1 APIs.
type apiServers struct {
	srv             *http.Server
	url             string
	sms, chat, push *apiFake
	expectSMS       func(string) (body string, ok bool)
	expectChat      func(string) (text string, ok bool)
	// chatDeliveryID is the delivery ID a Slack channel's message carries.
	chatDeliveryID func(channel string) string
	expectPush     func(token string) (deliveryID string, ok bool)
	credentials    []byte
}

func startAPIs(p plan, slowBy time.Duration, a *apiServers) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	a.url = "http://" + l.Addr().String()
	a.sms = &apiFake{channel: "sms", plan: p, slowBy: slowBy, ledger: newLedger(), msgs: newMessages()}
	a.chat = &apiFake{channel: "chat", plan: p, slowBy: slowBy, ledger: newLedger(), msgs: newMessages()}
	a.push = &apiFake{channel: "push", plan: p, slowBy: slowBy, ledger: newLedger()}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	a.credentials, err = json.Marshal(map[string]string{
		"type": "service_account", "project_id": fcmProject, "client_email": "chaos@chaos-project.iam.gserviceaccount.com",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "token_uri": a.url + "/token",
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/Messages.json", a.twilio)
	mux.HandleFunc("GET /2010-04-01/Accounts/{sid}/Messages.json", a.twilioList)
	mux.HandleFunc("POST /api/chat.postMessage", a.slack)
	mux.HandleFunc("GET /api/conversations.history", a.slackHistory)
	mux.HandleFunc("POST /token", a.token)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", a.fcm)
	a.srv = &http.Server{Handler: mux}
	go func() { _ = a.srv.Serve(l) }()
	return nil
}

// twilio takes a text message to a phone: every copy reaches the phone.
func (a *apiServers) twilio(w http.ResponseWriter, r *http.Request) {
	sid, token, ok := r.BasicAuth()
	if !ok || sid != twilioSID || token != twilioToken || r.PathValue("sid") != twilioSID {
		a.sms.ledger.refuse("sms: bad credentials")
		apiError(w, http.StatusUnauthorized, "")
		return
	}
	if err := r.ParseForm(); err != nil {
		apiError(w, http.StatusBadRequest, "")
		return
	}
	to, body := r.PostForm.Get("To"), r.PostForm.Get("Body")
	if want, ok := a.expectSMS(to); !ok || body != want || r.PostForm.Get("From") != twilioFrom {
		a.sms.ledger.refuse("sms to %s: unexpected message %q from %q", to, body, r.PostForm.Get("From"))
		apiError(w, http.StatusBadRequest, "")
		return
	}
	var msgSID string
	a.sms.answer(w, r, to, func() {
		msgSID = fmt.Sprintf("SM%032d", a.sms.seq.Add(1))
		a.sms.msgs.add(to, stored{id: msgSID, body: body, from: r.PostForm.Get("From"), created: time.Now()})
		a.sms.ledger.applyAs(to, msgSID)
	}, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprintf(w, `{"sid":%q,"status":"queued","to":%q,"from":%q,"body":%q,"direction":"outbound-api"}`, msgSID, to, twilioFrom, body)
	})
}

// slack takes a chat.postMessage: every copy shows in the channel.
func (a *apiServers) slack(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+slackToken {
		a.chat.ledger.refuse("chat: bad token")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
		return
	}
	var msg struct {
		Channel  string `json:"channel"`
		Text     string `json:"text"`
		Metadata struct {
			EventType    string            `json:"event_type"`
			EventPayload map[string]string `json:"event_payload"`
		} `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		apiError(w, http.StatusBadRequest, "")
		return
	}
	id := msg.Metadata.EventPayload["delivery_id"]
	if want, ok := a.expectChat(msg.Channel); !ok || msg.Text != want || msg.Metadata.EventType != "onceflow_delivery" || id != a.chatDeliveryID(msg.Channel) {
		a.chat.ledger.refuse("chat to %s: unexpected text %q or metadata %q %q", msg.Channel, msg.Text, msg.Metadata.EventType, id)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":false,"error":"channel_not_found"}`)
		return
	}
	var ts string
	a.chat.answer(w, r, msg.Channel, func() {
		var at time.Time
		ts, at = a.chat.msgs.slackTS()
		a.chat.msgs.add(msg.Channel, stored{id: ts, body: msg.Text, created: at, eventType: msg.Metadata.EventType, deliveryID: id})
		a.chat.ledger.applyAs(msg.Channel, "slack "+msg.Channel+" ts "+ts)
	}, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, msg.Channel, ts)
	})
}

// token is Google's OAuth token endpoint, for the FCM service account.
func (a *apiServers) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.PostForm.Get("assertion") == "" {
		a.push.ledger.refuse("push: token request without a JWT assertion")
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_in":3600,"token_type":"Bearer"}`, fcmAccess)
}

// fcm takes a push to a device, which shows one notification per collapse
// ID and tag: a copy with the same ones replaces the first.
func (a *apiServers) fcm(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+fcmAccess || r.PathValue("project") != fcmProject {
		a.push.ledger.refuse("push: bad token or project")
		apiError(w, http.StatusUnauthorized, "")
		return
	}
	var body struct {
		Message struct {
			Token        string            `json:"token"`
			Data         map[string]string `json:"data"`
			Notification struct {
				Body string `json:"body"`
			} `json:"notification"`
			Android struct {
				CollapseKey  string `json:"collapse_key"`
				Notification struct {
					Tag string `json:"tag"`
				} `json:"notification"`
			} `json:"android"`
			APNS struct {
				Headers map[string]string `json:"headers"`
			} `json:"apns"`
		} `json:"message"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		apiError(w, http.StatusBadRequest, "")
		return
	}
	m := body.Message
	id, ok := a.expectPush(m.Token)
	if !ok || m.Android.CollapseKey != id || m.APNS.Headers["apns-collapse-id"] != id || m.Data["onceflow_delivery_id"] != id {
		a.push.ledger.refuse("push to %s: collapse IDs %q/%q, want %q", m.Token, m.Android.CollapseKey, m.APNS.Headers["apns-collapse-id"], id)
		apiError(w, http.StatusBadRequest, "")
		return
	}
	effect := strings.Join([]string{m.Token, m.Android.CollapseKey, m.Android.Notification.Tag}, "\x00")
	a.push.answer(w, r, m.Token, func() { a.push.ledger.apply(m.Token, effect) }, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"name":"projects/%s/messages/%d"}`, fcmProject, a.push.seq.Add(1))
	})
}
