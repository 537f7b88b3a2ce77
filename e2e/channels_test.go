package e2e_test

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
	"github.com/onceflow/onceflow/providers/email"
)

func TestEveryChannelEndToEnd(t *testing.T) {
	var in teststack.Inbox
	cfg, slackHook := servers.ChannelServers(t, &in, false)
	hook := testenv.NewReceiver(t)
	s := servers.New(t, cfg, nil)
	n := onceflow.Notification{
		Key: "every-channel-1", Subject: "Order 9 shipped", Body: "Your order is on its way.",
		Deliveries: []onceflow.Delivery{
			{Channel: onceflow.Webhook, To: hook.URL},
			{Channel: onceflow.Email, To: "ada@example.com"},
			{Channel: onceflow.SMS, To: "+447700900123"},
			{Channel: onceflow.Chat, To: slackHook},
			{Channel: onceflow.Push, To: "device-token-1"},
		},
	}
	_, err := s.Client.Send(teststack.Context(t), n)
	require.NoError(t, err)
	res, err := s.Client.Wait(teststack.Context(t), n.Key)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, len(n.Deliveries))
	for _, d := range res.Deliveries {
		assert.Equal(t, onceflow.Delivered, d.Status, "%s: %s", d.Channel, d.Reason)
	}
	assert.Len(t, hook.Headers(), 1)
	require.Len(t, in.Mail(), 1)
	assert.Contains(t, in.Mail()[0], "Message-ID: <"+n.Deliveries[1].ID(n.Key)+"@shop.example>")
	require.Len(t, in.SMS(), 1)
	assert.Equal(t, "Your order is on its way.", in.SMS()[0].Get("Body"))
	assert.Equal(t, []string{"*Order 9 shipped*\nYour order is on its way."}, in.Chat())
	require.Len(t, in.Push(), 1)
	assert.Contains(t, in.Push()[0], n.Deliveries[4].ID(n.Key), "the delivery ID is the collapse key")
	assert.Equal(t, "projects/e2e/messages/1", res.Deliveries[4].Receipt)

	// Sent again after its workflow is gone: every channel is suppressed.
	run := s.StartNewRun(t, n)
	var again onceflow.Result
	require.NoError(t, run.Get(teststack.Context(t), &again))
	require.Len(t, again.Deliveries, len(n.Deliveries))
	for _, d := range again.Deliveries {
		assert.Equal(t, onceflow.Suppressed, d.Status, d.Channel)
	}
	assert.Len(t, in.Mail(), 1)
	assert.Len(t, in.SMS(), 1)
	assert.Len(t, in.Chat(), 1)
	assert.Len(t, in.Push(), 1)
}

func TestPermanentSMSFailureIsReportedWithTwiliosReason(t *testing.T) {
	var in teststack.Inbox
	cfg, _ := servers.ChannelServers(t, &in, true)
	s := servers.New(t, cfg, nil)
	n := onceflow.Notification{Key: "sms-bad-number", Body: "Your code is 123456",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.SMS, To: "+447700900123"}}}
	_, d := s.SendAndWait(t, n)
	assert.Equal(t, onceflow.Failed, d.Status)
	assert.Contains(t, d.Reason, "21211")
	assert.EqualValues(t, 1, d.Attempts, "a 400 is not retried")
}

func TestTemplatesRenderOncePerChannel(t *testing.T) {
	var in teststack.Inbox
	cfg, _ := servers.ChannelServers(t, &in, false)
	cfg.TemplatesDir = teststack.TemplatesDir(t)
	hook := testenv.NewReceiver(t)
	s := servers.New(t, cfg, nil)
	n := onceflow.Notification{
		Key: "templated-1", Template: "order-shipped", Data: map[string]any{"name": "Ada <admin>", "order": 42},
		Deliveries: []onceflow.Delivery{
			{Channel: onceflow.Email, To: "ada@example.com"},
			{Channel: onceflow.SMS, To: "+447700900123"},
			{Channel: onceflow.Webhook, To: hook.URL},
		},
	}
	_, err := s.Client.Send(teststack.Context(t), n)
	require.NoError(t, err)
	res, err := s.Client.Wait(teststack.Context(t), n.Key)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, len(n.Deliveries))
	for _, d := range res.Deliveries {
		assert.Equal(t, onceflow.Delivered, d.Status, "%s: %s", d.Channel, d.Reason)
	}
	require.Len(t, in.Mail(), 1)
	assert.Contains(t, in.Mail()[0], "Subject: Order 42 shipped")
	assert.Contains(t, in.Mail()[0], "Hi Ada &lt;admin&gt;, order <b>42</b>", "HTML escaped where it must be")
	assert.Contains(t, in.Mail()[0], "Hi Ada <admin>, order 42 is on its way.", "the text part is not escaped")
	require.Len(t, in.SMS(), 1)
	assert.Equal(t, "Order 42 shipped", in.SMS()[0].Get("Body"), "SMS takes the short body")
}

func TestMissingTemplateVariableFailsBeforeAnyDelivery(t *testing.T) {
	var in teststack.Inbox
	cfg, _ := servers.ChannelServers(t, &in, false)
	cfg.TemplatesDir = teststack.TemplatesDir(t)
	hook := testenv.NewReceiver(t)
	s := servers.New(t, cfg, nil)
	n := onceflow.Notification{
		Key: "templated-missing", Template: "order-shipped", Data: map[string]any{"order": 42},
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Email, To: "ada@example.com"}, {Channel: onceflow.Webhook, To: hook.URL}},
	}
	started, err := s.Client.Send(teststack.Context(t), n)
	require.NoError(t, err)
	res, err := s.Client.Wait(teststack.Context(t), n.Key)
	require.NoError(t, err)
	require.Len(t, res.Deliveries, len(n.Deliveries))
	for _, d := range res.Deliveries {
		assert.Equal(t, onceflow.Failed, d.Status)
		assert.Contains(t, d.Reason, `template "order-shipped" needs variable "name"`)
	}
	assert.Empty(t, in.Mail())
	assert.Empty(t, hook.Headers())
	testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "template_missing_variable")
}

func TestFailingSMSFallsBackToEmail(t *testing.T) {
	var in teststack.Inbox
	cfg, _ := servers.ChannelServers(t, &in, true)
	s := servers.New(t, cfg, nil)
	n := onceflow.Notification{Key: "otp-fallback", Subject: "Your code", Body: "Your code is 123456",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.SMS, To: "+447700900123",
			Fallback: []onceflow.Delivery{{Channel: onceflow.Email, To: "ada@example.com"}}}}}
	started, d := s.SendAndWait(t, n)

	assert.Equal(t, onceflow.Failed, d.Status)
	assert.Contains(t, d.Reason, "21211")
	require.Len(t, d.Fallbacks, 1)
	assert.Equal(t, onceflow.Email, d.Fallbacks[0].Channel)
	assert.Equal(t, onceflow.Delivered, d.Fallbacks[0].Status, d.Fallbacks[0].Reason)
	assert.Len(t, in.Mail(), 1)
	assert.Empty(t, in.SMS())

	st, err := s.Client.Status(teststack.Context(t), n.Key)
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, st.Result.Status(), "the status query shows the fallback")
	require.Len(t, st.Result.Deliveries[0].Fallbacks, 1)
	testenv.RecordHistory(t, s.TC, started.WorkflowID, started.RunID, "sms_falls_back_to_email")

	// Sent again after its workflow is gone: the e-mail is not sent twice.
	run := s.StartNewRun(t, n)
	var res onceflow.Result
	require.NoError(t, run.Get(teststack.Context(t), &res))
	assert.Equal(t, onceflow.Suppressed, res.Deliveries[0].LastStep().Status)
	assert.Len(t, in.Mail(), 1)
}

func TestSecondSMTPRelayTakesOverWhenTheFirstIsDown(t *testing.T) {
	var in teststack.Inbox
	cfg, _ := servers.ChannelServers(t, &in, false)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := l.Addr().String()
	require.NoError(t, l.Close())
	cfg.Email = append([]email.Config{{Addr: down, From: "notify@shop.example", TLS: "none"}}, cfg.Email...)
	s := servers.New(t, cfg, nil)
	n := onceflow.Notification{Key: "relay-fallback", Subject: "Hi", Body: "Hello",
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Email, To: "ada@example.com"}}}
	_, d := s.SendAndWait(t, n)

	assert.Equal(t, onceflow.Delivered, d.Status, d.Reason)
	assert.EqualValues(t, 1, d.Attempts, "the fallback happened within the attempt, without a retry")
	assert.Contains(t, d.Receipt, "via smtp relay 2")
	assert.Contains(t, d.Receipt, "smtp relay 1 ("+down+")")
	assert.Len(t, in.Mail(), 1)
}
