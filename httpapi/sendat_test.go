package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/teststack"
)

// A send_at more than a year ahead is refused at the door, naming the
// field, and starts nothing; one inside the year starts.
func TestSendAtMoreThanAYearAheadIsRefused(t *testing.T) {
	s, srv := newAPI(t)
	post := func(key string, at time.Time) answer {
		body := `{"body":"Reminder","send_at":"` + at.UTC().Format(time.RFC3339) + `","deliveries":[{"channel":"webhook","to":"https://partner.example/hooks"}]}`
		return call(t, "POST", srv.URL+"/v1/notifications", map[string]string{"Idempotency-Key": `"` + key + `"`}, body)
	}
	far := post("api-far", time.Now().Add(2*365*24*time.Hour))
	assert.Equal(t, http.StatusBadRequest, far.code, far.body)
	assert.Equal(t, "send_at", far.body["field"])
	_, err := s.Client.Status(teststack.Context(t), "api-far")
	var nf *onceflow.NotFoundError
	assert.ErrorAs(t, err, &nf, "nothing started")

	near := post("api-near", time.Now().Add(300*24*time.Hour))
	require.Equal(t, http.StatusAccepted, near.code, near.body)
	require.NoError(t, s.Client.Cancel(teststack.Context(t), "api-near"))
}
