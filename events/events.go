// Package events tells an operator's system about the deliveries that need
// a person: it POSTs signed JSON events to ONCEFLOW_EVENTS_URL for
// delivery.failed, delivery.ambiguous and endpoint.failing.
//
// Design: the Deliver activity, when it knows that its outcome is final (a
// non-retryable failure, the last attempt the retry policy allows, or an
// ambiguous result), appends the event to an outbox in Redis (Outbox), and
// a Dispatcher in every worker process POSTs the outbox's events with
// bounded, backed-off retries. The notification workflow is not involved:
// its command sequence is unchanged, so every recorded history replays as
// before, and a slow or absent events receiver can neither delay nor change
// a delivery, whose activity only adds one Redis write after its outcome.
// The outbox is a Redis stream read through a consumer group, so that
// several workers share it and an event a dead worker had taken is taken
// again by another.
//
// Each event has an ID derived from what it reports (the delivery ID and
// the type; the endpoint's origin and the streak's start), used as the
// Standard Webhooks webhook-id. The outbox refuses an ID it already holds
// for the dedup window, so that an activity attempt retried after writing
// its event adds no second one, and a receiver can deduplicate retried
// POSTs by webhook-id.
//
// Events carry the notification's key, tenant, delivery ID, channel,
// status and reason (already redacted of recipients), never recipients or
// bodies; endpoint.failing carries the destination's origin
// (scheme://host:port), never its path or query, which may hold secrets.
package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// Environment variables the worker reads for events.
const (
	// EnvURL is where events are POSTed; unset, no events are recorded.
	EnvURL = "ONCEFLOW_EVENTS_URL"
	// EnvFailingAfter is how long a webhook destination must fail
	// continuously before endpoint.failing is sent (default
	// DefaultFailingAfter).
	EnvFailingAfter = "ONCEFLOW_ENDPOINT_FAILING_AFTER"
)

// DefaultFailingAfter is EnvFailingAfter's default: long enough that a
// receiver's deploy or a short outage does not page anyone, short enough
// that an operator hears of a broken endpoint before its retries run out
// (24h by default).
const DefaultFailingAfter = 10 * time.Minute

// Event types.
const (
	// TypeDeliveryFailed: a delivery failed for good (the provider refused
	// it permanently, or its retries ran out) and nothing was sent.
	TypeDeliveryFailed = "delivery.failed"
	// TypeDeliveryAmbiguous: a delivery may or may not have reached its
	// recipient; a person must look.
	TypeDeliveryAmbiguous = "delivery.ambiguous"
	// TypeEndpointFailing: a webhook destination has failed every attempt
	// for at least the configured time; sent once per failing streak.
	TypeEndpointFailing = "endpoint.failing"
)

// Event is the JSON body of every event POST.
type Event struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// Data is what an event reports. Delivery events fill the delivery fields,
// endpoint.failing the endpoint fields.
type Data struct {
	Key        string `json:"key,omitempty"`
	Tenant     string `json:"tenant,omitempty"`
	DeliveryID string `json:"delivery_id,omitempty"`
	// Recipient is a broadcast recipient's id (Key is then the
	// broadcast's); empty for a notification's delivery.
	Recipient string `json:"recipient,omitempty"`
	Channel   string `json:"channel"`
	Status    string `json:"status,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Attempt   int32  `json:"attempt,omitempty"`
	// Origin is the failing destination's scheme://host[:port].
	Origin string `json:"origin,omitempty"`
	// FailingSince is when the failing streak began.
	FailingSince *time.Time `json:"failing_since,omitempty"`
}

// Delivery is a final outcome the Deliver activity reports.
type Delivery struct {
	// Key is the caller's key (without the tenant's scope).
	Key    string
	Tenant string
	// Recipient is the broadcast recipient's id, for a broadcast's
	// delivery; Key is then the broadcast's key.
	Recipient  string
	DeliveryID string
	Channel    string
	// Status is "failed" or "ambiguous".
	Status  string
	Reason  string
	Attempt int32
}

// Event returns the event that reports d at now.
func (d Delivery) Event(now time.Time) Event {
	typ := TypeDeliveryFailed
	if d.Status == "ambiguous" {
		typ = TypeDeliveryAmbiguous
	}
	return Event{
		ID: eventID(typ, d.Tenant, d.DeliveryID), Type: typ, Timestamp: now.UTC(),
		Data: Data{Key: d.Key, Tenant: d.Tenant, Recipient: d.Recipient, DeliveryID: d.DeliveryID, Channel: d.Channel,
			Status: d.Status, Reason: d.Reason, Attempt: d.Attempt},
	}
}

// endpointEvent reports that origin has failed since since.
func endpointEvent(channel, origin string, since, now time.Time) Event {
	since = since.UTC()
	return Event{
		ID: eventID(TypeEndpointFailing, origin, since.Format(time.RFC3339Nano)), Type: TypeEndpointFailing, Timestamp: now.UTC(),
		Data: Data{Channel: channel, Origin: origin, FailingSince: &since},
	}
}

// eventID is a stable ID for the event of type typ about parts: the same
// outcome reported twice has the same ID.
func eventID(typ string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(typ))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return "evt_" + hex.EncodeToString(h.Sum(nil))[:32]
}

// Origin is the scheme://host[:port] of a destination URL, without user
// information, path or query, which may hold secrets; "" when raw is not
// an absolute URL.
func Origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// ParseURL checks EnvURL's value: an absolute http or https URL.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s=%q is not an absolute http or https URL", EnvURL, raw)
	}
	return u, nil
}

// encode is an event's JSON body.
func encode(e Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("events: encode %s: %w", e.Type, err)
	}
	return b, nil
}
