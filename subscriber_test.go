package onceflow

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAudienceFieldsAreValidated(t *testing.T) {
	base := func() Notification {
		return Notification{Key: "k1", Body: "hi", Deliveries: []Delivery{{Channel: InApp, To: "user-42"}}}
	}
	for name, tc := range map[string]struct {
		edit  func(*Notification)
		field string
	}{
		"subscriber is an e-mail address": {func(n *Notification) { n.Subscriber = "ann@example.com" }, "subscriber"},
		"subscriber has a slash":          {func(n *Notification) { n.Subscriber = "a/b" }, "subscriber"},
		"subscriber too long":             {func(n *Notification) { n.Subscriber = strings.Repeat("a", MaxSubscriberLength+1) }, "subscriber"},
		"category without subscriber":     {func(n *Notification) { n.Category = "marketing" }, "category"},
		"category upper case":             {func(n *Notification) { n.Subscriber, n.Category = "u1", "Marketing" }, "category"},
		"digest without subscriber":       {func(n *Notification) { n.Digest = &Digest{Key: "comments", Window: "10m"} }, "digest"},
		"digest window not a duration":    {func(n *Notification) { n.Subscriber, n.Digest = "u1", &Digest{Key: "comments", Window: "soon"} }, "digest.window"},
		"digest window too long":          {func(n *Notification) { n.Subscriber, n.Digest = "u1", &Digest{Key: "comments", Window: "8000h"} }, "digest.window"},
		"digest key empty":                {func(n *Notification) { n.Subscriber, n.Digest = "u1", &Digest{Window: "10m"} }, "digest.key"},
		"inapp to a phone number":         {func(n *Notification) { n.Deliveries[0].To = "+15551234567" }, "deliveries[0].to"},
	} {
		t.Run(name, func(t *testing.T) {
			n := base()
			tc.edit(&n)
			var verr *ValidationError
			require.True(t, errors.As(n.Validate(), &verr), "want a validation error")
			assert.Equal(t, tc.field, verr.Field)
		})
	}
	n := base()
	n.Subscriber, n.Category, n.Digest = "user-42", "security", &Digest{Key: "comments", Window: "10m"}
	n.Body, n.Template = "", "comments-digest" // a digest is rendered from a template
	require.NoError(t, n.Validate())
}

func TestAudienceFieldsLeaveOldFingerprintsAlone(t *testing.T) {
	n := Notification{Key: "k1", Body: "hi", Deliveries: []Delivery{{Channel: Webhook, To: "https://example.com/h"}}}
	before := n.Fingerprint()
	n.Subscriber = "u1"
	assert.NotEqual(t, before, n.Fingerprint(), "a subscriber is part of the payload")
	n.Subscriber = ""
	assert.Equal(t, before, n.Fingerprint())
}

func TestSkippedSumsUp(t *testing.T) {
	r := Result{Deliveries: []DeliveryResult{{Status: Skipped}, {Status: Skipped}}}
	assert.Equal(t, Skipped, r.Status())
	r.Deliveries[1].Status = Suppressed
	assert.Equal(t, Suppressed, r.Status())
	r.Deliveries[1].Status = Delivered
	assert.Equal(t, Delivered, r.Status())
	assert.True(t, Skipped.Final())
}
