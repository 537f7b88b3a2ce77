package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/providers/chat"
	"github.com/onceflow/onceflow/providers/sms"
)

// stallingProvider is a local Slack Web API and Twilio Messages API whose
// first send stalls past the attempt's send deadline, having applied the
// message or not as applyFirst says: the attempt may have sent, and only
// asking the provider tells.
type stallingProvider struct {
	applyFirst bool
	// applyLate applies the first message only this long after the client
	// gave up on it: a provider still processing a request whose sender
	// has gone.
	applyLate time.Duration

	mu    sync.Mutex
	posts int
	slack []map[string]any // applied chat.postMessage bodies, with their ts
	texts []map[string]any // applied Twilio messages as the list shows them
}

// stall answers nothing until the client gives up.
func stall(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

func (p *stallingProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/chat.postMessage":
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		p.mu.Lock()
		p.posts++
		first := p.posts == 1
		ts := fmt.Sprintf("%d.%06d", time.Now().Unix(), p.posts)
		if !first || p.applyFirst {
			body["ts"] = ts
			p.slack = append(p.slack, body)
		}
		p.mu.Unlock()
		if first {
			stall(r)
			p.late(func() { body["ts"] = ts; p.slack = append(p.slack, body) })
			return
		}
		_, _ = fmt.Fprintf(w, `{"ok":true,"channel":"C123","ts":%q}`, ts)
	case r.Method == http.MethodGet && r.URL.Path == "/api/conversations.history":
		oldest, _ := strconv.ParseFloat(r.URL.Query().Get("oldest"), 64)
		p.mu.Lock()
		var msgs []map[string]any
		for _, m := range p.slack {
			if ts, _ := strconv.ParseFloat(m["ts"].(string), 64); ts > oldest && r.URL.Query().Get("include_all_metadata") == "true" {
				msgs = append(msgs, map[string]any{"type": "message", "ts": m["ts"], "text": m["text"], "metadata": m["metadata"]})
			}
		}
		p.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "messages": msgs, "has_more": false})
	case r.Method == http.MethodPost && r.URL.Path == "/2010-04-01/Accounts/AC1/Messages.json":
		_ = r.ParseForm()
		p.mu.Lock()
		p.posts++
		first := p.posts == 1
		sid := fmt.Sprintf("SM%d", p.posts)
		text := map[string]any{"sid": sid, "to": r.PostForm.Get("To"), "from": r.PostForm.Get("From"),
			"body": r.PostForm.Get("Body"), "direction": "outbound-api", "messaging_service_sid": nil,
			"date_created": time.Now().UTC().Format(time.RFC1123Z), "date_sent": nil, "status": "queued"}
		if !first || p.applyFirst {
			p.texts = append(p.texts, text)
		}
		p.mu.Unlock()
		if first {
			stall(r)
			p.late(func() { p.texts = append(p.texts, text) })
			return
		}
		w.WriteHeader(201)
		_, _ = fmt.Fprintf(w, `{"sid":%q,"status":"queued"}`, sid)
	case r.Method == http.MethodGet && r.URL.Path == "/2010-04-01/Accounts/AC1/Messages.json":
		q := r.URL.Query()
		p.mu.Lock()
		var msgs []map[string]any
		for _, m := range p.texts {
			if m["to"] == q.Get("To") && m["from"] == q.Get("From") {
				msgs = append(msgs, m)
			}
		}
		p.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"messages": msgs, "next_page_uri": nil})
	default:
		w.WriteHeader(404)
	}
}

// late applies the first message applyLate after its sender gave up, when
// applyLate is set.
func (p *stallingProvider) late(apply func()) {
	if p.applyLate == 0 {
		return
	}
	time.Sleep(p.applyLate)
	p.mu.Lock()
	apply()
	p.mu.Unlock()
}

func (p *stallingProvider) applied() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.slack) + len(p.texts)
}

// An attempt's send times out with the provider silent; the next attempt
// asks the provider instead of holding: a message it has is delivered,
// with the provider's receipt, and one it has not is sent once more.
func TestInterruptedSendIsSettledByAskingTheProvider(t *testing.T) {
	for _, c := range []struct {
		channel onceflow.Channel
		to      string
	}{{onceflow.Chat, "C123"}, {onceflow.SMS, "+447700900123"}} {
		for _, applied := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, applied by the provider: %v", c.channel, applied), func(t *testing.T) {
				p := &stallingProvider{applyFirst: applied}
				api := httptest.NewServer(p)
				t.Cleanup(api.Close)
				cfg := servers.WorkerConfig()
				cfg.Chat = &chat.Config{BotToken: "xoxb-e2e", APIURL: api.URL + "/api"}
				cfg.SMS = []sms.Config{{AccountSID: "AC1", AuthToken: "token", From: "+15005550006", BaseURL: api.URL}}
				s := servers.New(t, cfg, nil)
				n := onceflow.Notification{Key: fmt.Sprintf("interrupted-%s-%v", c.channel, applied), Body: "Deployed to production",
					Deliveries: []onceflow.Delivery{{Channel: c.channel, To: c.to}}}

				_, d := s.SendAndWait(t, n)
				assert.Equal(t, onceflow.Delivered, d.Status, d.Reason)
				assert.Equal(t, 1, p.applied(), "exactly one message at the provider")
				if applied {
					assert.Contains(t, d.Reason, "confirmed by the provider after an interrupted attempt")
					assert.Equal(t, 1, p.posts, "not sent again")
					if c.channel == onceflow.Chat {
						assert.Regexp(t, `^slack C123 ts \d+\.000001$`, d.Receipt, "the receipt is the first post's")
					} else {
						assert.Equal(t, "SM1", d.Receipt)
					}
				} else {
					assert.Contains(t, d.Reason, "confirmed that it had not sent it")
					assert.Equal(t, 2, p.posts)
				}
				assert.GreaterOrEqual(t, d.Attempts, int32(2))
			})
		}
	}
}

// A provider may still be processing a request its sender gave up on: a
// lookup right after the interruption would not find the message and send
// a second copy. The lookup waits for the provider to settle first.
func TestLookupWaitsForTheProviderToFinishAnInterruptedSend(t *testing.T) {
	for _, c := range []struct {
		channel onceflow.Channel
		to      string
	}{{onceflow.Chat, "C123"}, {onceflow.SMS, "+447700900123"}} {
		t.Run(string(c.channel), func(t *testing.T) {
			// The provider finishes 300ms after the client gave up; the next
			// attempt starts about 100ms after the interruption, but the
			// stack's LookupSettle (1.5s) keeps its lookup until after that.
			p := &stallingProvider{applyLate: 300 * time.Millisecond}
			api := httptest.NewServer(p)
			t.Cleanup(api.Close)
			cfg := servers.WorkerConfig()
			cfg.Chat = &chat.Config{BotToken: "xoxb-e2e", APIURL: api.URL + "/api"}
			cfg.SMS = []sms.Config{{AccountSID: "AC1", AuthToken: "token", From: "+15005550006", BaseURL: api.URL}}
			s := servers.New(t, cfg, nil)
			n := onceflow.Notification{Key: "late-" + string(c.channel), Body: "Deployed to production",
				Deliveries: []onceflow.Delivery{{Channel: c.channel, To: c.to}}}

			_, d := s.SendAndWait(t, n)
			assert.Equal(t, onceflow.Delivered, d.Status, d.Reason)
			assert.Equal(t, 1, p.applied(), "exactly one message at the provider")
			assert.Equal(t, 1, p.posts, "not sent again")
			assert.Contains(t, d.Reason, "confirmed by the provider after an interrupted attempt")
		})
	}
}
