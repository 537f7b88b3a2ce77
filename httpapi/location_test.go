package httpapi_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/testenv"
)

// Keys may hold '/', '?', '#', '%' and dots: the Location a POST answers
// must lead a GET, taken verbatim, back to the same notification.
func TestLocationLeadsBackToTheNotification(t *testing.T) {
	_, srv := newAPI(t)
	rcv := testenv.NewReceiver(t)
	for _, key := range []string{"a/b?c#d%25e", "x//y/../z", "..", "%2F", "semi;colon,comma"} {
		t.Run(key, func(t *testing.T) {
			hdr := map[string]string{"Idempotency-Key": strconv.Quote(key), "Content-Type": "application/json"}
			a := call(t, "POST", srv.URL+"/v1/notifications", hdr, notificationJSON(rcv.URL))
			require.Equal(t, http.StatusAccepted, a.code, a.body)
			loc := a.header.Get("Location")
			assert.Equal(t, loc, a.body["status_url"])

			got := call(t, "GET", srv.URL+loc, nil, "")
			require.Equal(t, http.StatusOK, got.code, "GET %s: %v", loc, got.body)
			assert.Equal(t, "notification/"+key, got.body["workflow_id"])
		})
	}
}

// A broadcast's Location is escaped the same way.
func TestLocationLeadsBackToTheBroadcast(t *testing.T) {
	srv := newBroadcastAPI(t)
	rcv := testenv.NewReceiver(t)
	for _, key := range []string{"sale/b?c#d%25e", ".."} {
		t.Run(key, func(t *testing.T) {
			hdr := map[string]string{"Idempotency-Key": strconv.Quote(key), "Content-Type": "application/json"}
			a := call(t, "POST", srv.URL+"/v1/broadcasts", hdr, broadcastJSON(rcv.URL, 2, ""))
			require.Equal(t, http.StatusAccepted, a.code, a.body)
			loc := a.header.Get("Location")
			assert.Equal(t, loc, a.body["status_url"])

			got := call(t, "GET", srv.URL+loc, nil, "")
			require.Equal(t, http.StatusOK, got.code, "GET %s: %v", loc, got.body)
			assert.Equal(t, "broadcast/"+key, got.body["workflow_id"])
		})
	}
}
