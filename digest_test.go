package onceflow

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDigestEventNeedsATemplateAndNoSendAt(t *testing.T) {
	base := func() Notification {
		return Notification{Key: "c-1", Template: "comments", Subscriber: "u1", Digest: &Digest{Key: "comments", Window: "10m"},
			Deliveries: []Delivery{{Channel: Webhook, To: "https://example.com/h"}}}
	}
	require.NoError(t, base().Validate())
	later := time.Now().Add(time.Hour)
	for name, tc := range map[string]struct {
		edit  func(*Notification)
		field string
	}{
		"no template":   {func(n *Notification) { n.Template, n.Body = "", "hi" }, "template"},
		"send_at":       {func(n *Notification) { n.SendAt = &later }, "send_at"},
		"data too big":  {func(n *Notification) { n.Data = map[string]any{"x": strings.Repeat("a", MaxDigestEventDataBytes)} }, "data"},
		"window 'soon'": {func(n *Notification) { n.Digest.Window = "soon" }, "digest.window"},
	} {
		t.Run(name, func(t *testing.T) {
			n := base()
			tc.edit(&n)
			var verr *ValidationError
			require.True(t, errors.As(n.Validate(), &verr), "want a validation error")
			assert.Equal(t, tc.field, verr.Field)
		})
	}
}

func TestDigestDataListsEventsInOrder(t *testing.T) {
	d := DigestData("u1", "comments", []DigestEvent{{Key: "b", Data: map[string]any{"n": 1}}, {Key: "a"}})
	assert.Equal(t, 2, d["count"])
	events := d["events"].([]any)
	assert.Equal(t, "b", events[0].(map[string]any)["key"])
	assert.Equal(t, map[string]any{}, events[1].(map[string]any)["data"], "an event without data has empty data, so templates can index it")
}

func TestValidateDigestKeyNamesTheField(t *testing.T) {
	require.NoError(t, ValidateDigestKey("comments"))
	var verr *ValidationError
	require.ErrorAs(t, ValidateDigestKey("Comments"), &verr)
	assert.Equal(t, "digest.key", verr.Field)
}
