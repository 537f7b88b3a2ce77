package events

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/providers/egress"
)

// The events URL passes the egress guard as webhook URLs do: a loopback
// receiver is refused unless the operator allows loopback.
func TestEventsURLPassesTheEgressGuard(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ }))
	t.Cleanup(srv.Close)

	d, err := NewDispatcher(nil, srv.URL+"/events", testenv.WebhookSecret, egress.Guard{})
	require.NoError(t, err)
	err = d.send(context.Background(), "evt_1", []byte(`{}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "egress guard")
	assert.Zero(t, hits)

	d, err = NewDispatcher(nil, srv.URL+"/events", testenv.WebhookSecret, egress.Guard{Allow: egress.Loopback()})
	require.NoError(t, err)
	require.NoError(t, d.send(context.Background(), "evt_1", []byte(`{}`)))
	assert.Equal(t, 1, hits)
}

func TestOriginDropsPathQueryAndUser(t *testing.T) {
	assert.Equal(t, "https://hooks.example.com:8443", Origin("https://user:pw@hooks.example.com:8443/a/s3cret?token=x"))
	assert.Equal(t, "", Origin("not a url"))
}
