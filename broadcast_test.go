package onceflow_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
)

func validBroadcast(n int) onceflow.Broadcast {
	b := onceflow.Broadcast{Key: "spring-sale", Channel: onceflow.Email, Subject: "Spring sale", Body: "20% off."}
	for i := range n {
		b.Recipients = append(b.Recipients, onceflow.Recipient{ID: fmt.Sprintf("user-%d", i), To: fmt.Sprintf("user%d@example.com", i)})
	}
	return b
}

func TestBroadcastValidationNamesTheFieldAndIndex(t *testing.T) {
	require.NoError(t, validBroadcast(20).Validate())
	cases := map[string]struct {
		change func(*onceflow.Broadcast)
		field  string
	}{
		"no key":            {func(b *onceflow.Broadcast) { b.Key = "" }, "key"},
		"no channel":        {func(b *onceflow.Broadcast) { b.Channel = "" }, "channel"},
		"unknown channel":   {func(b *onceflow.Broadcast) { b.Channel = "fax" }, "channel"},
		"no recipients":     {func(b *onceflow.Broadcast) { b.Recipients = nil }, "recipients"},
		"bad address":       {func(b *onceflow.Broadcast) { b.Recipients[17].To = "not an address" }, "recipients[17].to"},
		"missing address":   {func(b *onceflow.Broadcast) { b.Recipients[3].To = "" }, "recipients[3].to"},
		"missing id":        {func(b *onceflow.Broadcast) { b.Recipients[4].ID = "" }, "recipients[4].id"},
		"id with space":     {func(b *onceflow.Broadcast) { b.Recipients[5].ID = "user 5" }, "recipients[5].id"},
		"repeated id":       {func(b *onceflow.Broadcast) { b.Recipients[9].ID = "user-2" }, "recipients[9].id"},
		"data sans tmpl":    {func(b *onceflow.Broadcast) { b.Recipients[1].Data = map[string]any{"name": "Ada"} }, "recipients[1].data"},
		"no body":           {func(b *onceflow.Broadcast) { b.Body = " " }, "body"},
		"template and body": {func(b *onceflow.Broadcast) { b.Template = "sale" }, "subject"},
		"huge data": {func(b *onceflow.Broadcast) {
			b.Subject, b.Body, b.Template = "", "", "sale"
			b.Recipients[2].Data = map[string]any{"x": strings.Repeat("y", onceflow.MaxRecipientDataBytes)}
		}, "recipients[2].data"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := validBroadcast(20)
			c.change(&b)
			err := b.Validate()
			var ve *onceflow.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, c.field, ve.Field, err.Error())
		})
	}
}

func TestBroadcastOfTooManyRecipientsIsRefused(t *testing.T) {
	b := validBroadcast(onceflow.MaxRecipients)
	require.NoError(t, b.Validate())
	b.Recipients = append(b.Recipients, onceflow.Recipient{ID: "one-more", To: "more@example.com"})
	var ve *onceflow.ValidationError
	require.ErrorAs(t, b.Validate(), &ve)
	assert.Equal(t, "recipients", ve.Field)
	assert.Contains(t, ve.Reason, "100000")
}

func TestDecodeBroadcastRefusesUnknownFields(t *testing.T) {
	_, err := onceflow.DecodeBroadcast(strings.NewReader(`{"key":"k","channel":"email","body":"b","recipients":[{"id":"1","to":"a@example.com","name":"Ada"}]}`))
	var ve *onceflow.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "name", ve.Field)
	assert.Contains(t, ve.Reason, "not a broadcast field")

	b, err := onceflow.DecodeBroadcast(strings.NewReader(`{"key":"k","channel":"email","body":"b","recipients":[{"id":"1","to":"a@example.com"}]}`))
	require.NoError(t, err)
	require.NoError(t, b.Validate())
}

func TestBroadcastFingerprint(t *testing.T) {
	b := validBroadcast(3)
	b.Subject, b.Body, b.Template = "", "", "sale"
	type order struct {
		Total float64 `json:"total"`
		ID    string  `json:"id"`
	}
	b.Recipients[0].Data = map[string]any{"order": order{Total: 5, ID: "A"}}
	// As JSON carries it: a struct becomes a map, the number a float64.
	decoded := b
	decoded.Recipients = append([]onceflow.Recipient(nil), b.Recipients...)
	decoded.Recipients[0].Data = map[string]any{"order": map[string]any{"id": "A", "total": float64(5)}}
	assert.Equal(t, b.Fingerprint(), decoded.Fingerprint(), "a Go caller and a JSON caller agree")

	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	utc := at.UTC()
	b1, b2 := b, b
	b1.SendAt, b2.SendAt = &at, &utc
	assert.Equal(t, b1.Fingerprint(), b2.Fingerprint(), "the same instant in another zone")

	for name, change := range map[string]func(*onceflow.Broadcast){
		"address":   func(b *onceflow.Broadcast) { b.Recipients[2].To = "other@example.com" },
		"id":        func(b *onceflow.Broadcast) { b.Recipients[2].ID = "user-x" },
		"order":     func(b *onceflow.Broadcast) { b.Recipients[0], b.Recipients[1] = b.Recipients[1], b.Recipients[0] },
		"template":  func(b *onceflow.Broadcast) { b.Template = "winter-sale" },
		"tenant":    func(b *onceflow.Broadcast) { b.Tenant = "acme" },
		"one fewer": func(b *onceflow.Broadcast) { b.Recipients = b.Recipients[:2] },
	} {
		c := b
		c.Recipients = append([]onceflow.Recipient(nil), b.Recipients...)
		change(&c)
		assert.NotEqual(t, b.Fingerprint(), c.Fingerprint(), name)
	}
}

func TestRecipientDeliveryIDs(t *testing.T) {
	id := onceflow.RecipientDeliveryID("spring-sale", "user-1")
	assert.Equal(t, id, onceflow.RecipientDeliveryID("spring-sale", "user-1"), "stable")
	assert.NotEqual(t, id, onceflow.RecipientDeliveryID("spring-sale", "user-2"))
	assert.NotEqual(t, id, onceflow.RecipientDeliveryID("acme@spring-sale", "user-1"), "tenants do not share IDs")
	assert.True(t, strings.HasPrefix(id, "dlv_"))
	assert.NotContains(t, id, "user-1", "no personal data in clear")
	// A notification whose key, channel and address spell the same words
	// gets another ID.
	assert.NotEqual(t, id, onceflow.Delivery{Channel: "spring-sale", To: "user-1"}.ID("broadcast"))
	assert.NotEqual(t, onceflow.BroadcastLedgerKey("spring-sale"), "spring-sale")
	assert.Error(t, onceflow.ValidateKey(onceflow.BroadcastLedgerKey("spring-sale")), "no notification key can name a broadcast's records")
}

func BenchmarkBroadcastFingerprint100k(b *testing.B) {
	bc := validBroadcast(onceflow.MaxRecipients)
	for b.Loop() {
		_ = bc.Fingerprint()
	}
}
