package onceflow_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
)

func valid() onceflow.Notification {
	return onceflow.Notification{
		Key:  "order-1234-shipped",
		Body: "Your order has shipped.",
		Deliveries: []onceflow.Delivery{
			{Channel: onceflow.Webhook, To: "https://partner.example/hooks"},
			{Channel: onceflow.Email, To: "ada@example.com"},
			{Channel: onceflow.SMS, To: "+447700900123"},
			{Channel: onceflow.Push, To: "device-token-1"},
			{Channel: onceflow.Chat, To: "#orders"},
		},
	}
}

func TestValidNotificationPasses(t *testing.T) {
	require.NoError(t, valid().Validate())
	n := valid()
	n.Body, n.Template, n.Data = "", "order-shipped", map[string]any{"order": 42}
	require.NoError(t, n.Validate())
}

func TestValidationNamesTheField(t *testing.T) {
	cases := map[string]struct {
		change func(*onceflow.Notification)
		field  string
	}{
		"no key":                {func(n *onceflow.Notification) { n.Key = "" }, "key"},
		"key with space":        {func(n *onceflow.Notification) { n.Key = "order 1" }, "key"},
		"key non-ascii":         {func(n *onceflow.Notification) { n.Key = "commande-é" }, "key"},
		"key too long":          {func(n *onceflow.Notification) { n.Key = strings.Repeat("k", 201) }, "key"},
		"key with email":        {func(n *onceflow.Notification) { n.Key = "reset-ada@example.com" }, "key"},
		"no deliveries":         {func(n *onceflow.Notification) { n.Deliveries = nil }, "deliveries"},
		"unknown channel":       {func(n *onceflow.Notification) { n.Deliveries[1].Channel = "fax" }, "deliveries[1].channel"},
		"missing channel":       {func(n *onceflow.Notification) { n.Deliveries[1].Channel = "" }, "deliveries[1].channel"},
		"missing to":            {func(n *onceflow.Notification) { n.Deliveries[0].To = "" }, "deliveries[0].to"},
		"relative webhook":      {func(n *onceflow.Notification) { n.Deliveries[0].To = "/hooks" }, "deliveries[0].to"},
		"ftp webhook":           {func(n *onceflow.Notification) { n.Deliveries[0].To = "ftp://x.example/" }, "deliveries[0].to"},
		"bad email":             {func(n *onceflow.Notification) { n.Deliveries[1].To = "ada at example" }, "deliveries[1].to"},
		"named email":           {func(n *onceflow.Notification) { n.Deliveries[1].To = "Ada <ada@example.com>" }, "deliveries[1].to"},
		"local sms":             {func(n *onceflow.Notification) { n.Deliveries[2].To = "07700900123" }, "deliveries[2].to"},
		"padded token":          {func(n *onceflow.Notification) { n.Deliveries[3].To = " token" }, "deliveries[3].to"},
		"duplicate":             {func(n *onceflow.Notification) { n.Deliveries[4] = n.Deliveries[0] }, "deliveries[4]"},
		"no body":               {func(n *onceflow.Notification) { n.Body = "  " }, "body"},
		"huge body":             {func(n *onceflow.Notification) { n.Body = strings.Repeat("x", onceflow.MaxBodyBytes+1) }, "body"},
		"two-line subject":      {func(n *onceflow.Notification) { n.Subject = "a\r\nBcc: x@example.com" }, "subject"},
		"data without template": {func(n *onceflow.Notification) { n.Data = map[string]any{"a": 1} }, "data"},
		"bad template name":     {func(n *onceflow.Notification) { n.Body, n.Template = "", "../etc" }, "template"},
		"template and body":     {func(n *onceflow.Notification) { n.Template = "order-shipped" }, "body"},
		"template and subject": {func(n *onceflow.Notification) {
			n.Body, n.Subject, n.Template = "", "s", "order-shipped"
		}, "subject"},
		"huge data": {func(n *onceflow.Notification) {
			n.Body, n.Template, n.Data = "", "t", map[string]any{"x": strings.Repeat("y", onceflow.MaxBodyBytes)}
		}, "data"},
		"too many deliveries": {func(n *onceflow.Notification) {
			n.Deliveries = make([]onceflow.Delivery, onceflow.MaxDeliveries+1)
		}, "deliveries"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			n := valid()
			c.change(&n)
			var ve *onceflow.ValidationError
			require.True(t, errors.As(n.Validate(), &ve), "want a ValidationError")
			assert.Equal(t, c.field, ve.Field)
			assert.Contains(t, ve.Error(), c.field)
		})
	}
}

func TestDeliveryIDIsStableAndDistinct(t *testing.T) {
	d := onceflow.Delivery{Channel: onceflow.Webhook, To: "https://partner.example/hooks"}
	id := d.ID("order-1")
	assert.Equal(t, id, d.ID("order-1"))
	assert.NotEqual(t, id, d.ID("order-2"))
	assert.NotEqual(t, id, onceflow.Delivery{Channel: onceflow.Webhook, To: "https://other.example/hooks"}.ID("order-1"))
	assert.NotEqual(t, id, onceflow.Delivery{Channel: onceflow.Chat, To: d.To}.ID("order-1"))
	assert.NotContains(t, id, "partner", "the ID carries no recipient in clear")
}

func TestFingerprintTracksThePayload(t *testing.T) {
	a, b := valid(), valid()
	assert.Equal(t, a.Fingerprint(), b.Fingerprint())
	b.Body += "!"
	assert.NotEqual(t, a.Fingerprint(), b.Fingerprint())

	// The same instant in two zones is the same payload.
	utc := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	paris := utc.In(time.FixedZone("CET", 3600))
	a.SendAt, b = &utc, valid()
	b.SendAt = &paris
	assert.Equal(t, a.Fingerprint(), b.Fingerprint())
}

func TestDecodeNotificationRefusesUnknownFields(t *testing.T) {
	for doc, field := range map[string]string{
		`{"key":"k","bodyy":"typo"}`:           "bodyy",
		`{"key":7}`:                            "key",
		`{"deliveries":{"channel":"webhook"}}`: "deliveries",
		`{"send_at":"tomorrow"}`:               "send_at",
		`{"key":`:                              "notification",
		``:                                     "notification",
		`{"deliveries":[{"channel":"webhook","to":1}]}`: "deliveries.to",
	} {
		_, err := onceflow.DecodeNotification(strings.NewReader(doc))
		var ve *onceflow.ValidationError
		require.ErrorAs(t, err, &ve, doc)
		assert.Equal(t, field, ve.Field, doc)
	}

	n, err := onceflow.DecodeNotification(strings.NewReader(`{"key":"k","body":"b","deliveries":[{"channel":"webhook","to":"https://x.example"}],"send_at":"2026-12-01T09:00:00Z"}`))
	require.NoError(t, err)
	require.NoError(t, n.Validate())
	assert.Equal(t, 2026, n.SendAt.Year())

	_, err = onceflow.DecodeNotification(strings.NewReader(`{"key":"k"} {"key":"j"}`))
	assert.ErrorContains(t, err, "after the JSON document")
}

// The app fingerprints the notification it built; the workflow fingerprints
// the one it decoded from JSON. They must agree, or a re-send of the same
// payload would be refused as a conflict.
func TestFingerprintSurvivesAJSONRoundTrip(t *testing.T) {
	type order struct {
		Zebra string `json:"zebra"`
		ID    int64  `json:"id"`
		Items []string
	}
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	n := onceflow.Notification{
		Key: "order-1", Template: "shipped", SendAt: &at,
		Data:       map[string]any{"order": order{Zebra: "z", ID: 1234567, Items: []string{"a"}}, "count": 3},
		Deliveries: []onceflow.Delivery{{Channel: onceflow.Webhook, To: "https://partner.example/hooks"}},
	}
	b, err := json.Marshal(n)
	require.NoError(t, err)
	var decoded onceflow.Notification
	require.NoError(t, json.Unmarshal(b, &decoded))
	assert.Equal(t, n.Fingerprint(), decoded.Fingerprint())

	decoded.Data["count"] = 4.0
	assert.NotEqual(t, n.Fingerprint(), decoded.Fingerprint(), "another payload, another fingerprint")
}
