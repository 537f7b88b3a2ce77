package httpapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/onceflow/onceflow/digest"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/internal/teststack"
)

func digestJSON(to, window string) string {
	return `{"subscriber":"user-42","template":"digest","data":{"n":1},"digest":{"key":"comments","window":"` + window + `"},` +
		`"deliveries":[{"channel":"webhook","to":"` + to + `"}]}`
}

func TestDigestThroughTheAPI(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "digest"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "digest", "text.tmpl"), []byte("{{range .events}}{{.key}} {{end}}"), 0o644))
	cfg := servers.WorkerConfig()
	cfg.TemplatesDir = dir
	s := servers.New(t, cfg, nil)
	srv := httptest.NewServer(httpapi.Handler(s.Client, slog.New(slog.NewTextHandler(io.Discard, nil)), httpapi.WithDigests(digest.NewClient(s.TC))))
	t.Cleanup(srv.Close)
	rcv := testenv.NewReceiver(t)
	post := func(key, body string) answer {
		return call(t, "POST", srv.URL+"/v1/notifications", map[string]string{"Idempotency-Key": `"` + key + `"`, "Content-Type": "application/json"}, body)
	}

	t.Run("a bad window is refused by name and starts nothing", func(t *testing.T) {
		bad := post("api-digest-bad", digestJSON(rcv.URL, "soon"))
		assert.Equal(t, http.StatusBadRequest, bad.code)
		assert.Equal(t, "digest.window", bad.body["field"])
		assert.Equal(t, http.StatusNotFound, call(t, "GET", srv.URL+"/v1/notifications/api-digest-bad", nil, "").code)
		assert.Equal(t, http.StatusNotFound, call(t, "GET", srv.URL+"/v1/subscribers/user-42/digests/comments", nil, "").code)
	})

	t.Run("an event is sent in its digest", func(t *testing.T) {
		ok := post("api-digest-1", digestJSON(rcv.URL, "2s"))
		require.Equal(t, http.StatusAccepted, ok.code, ok.body)
		cancel := call(t, "DELETE", srv.URL+"/v1/notifications/api-digest-1", nil, "")
		assert.Equal(t, http.StatusConflict, cancel.code, "an event cannot be withdrawn from its digest: %v", cancel.body)
		res, err := s.Client.Wait(teststack.Context(t), "api-digest-1")
		require.NoError(t, err)
		require.NotNil(t, res.Digest)

		st := call(t, "GET", srv.URL+"/v1/notifications/api-digest-1", nil, "")
		require.Equal(t, http.StatusOK, st.code)
		digest := st.body["result"].(map[string]any)["digest"].(map[string]any)
		assert.Equal(t, res.Digest.Notification, digest["notification"])
		assert.Equal(t, float64(1), digest["events"])

		d := call(t, "GET", srv.URL+"/v1/subscribers/user-42/digests/comments", nil, "")
		require.Equal(t, http.StatusOK, d.code, d.body)
		assert.Equal(t, "comments", d.body["key"])
		assert.Equal(t, 1, rcv.AppliedFor(res.Digest.Notification))
	})

	t.Run("a bad subscriber or digest key is refused by name", func(t *testing.T) {
		bad := call(t, "GET", srv.URL+"/v1/subscribers/a@b/digests/comments", nil, "")
		assert.Equal(t, http.StatusBadRequest, bad.code)
		assert.Equal(t, "subscriber", bad.body["field"])
		bad = call(t, "GET", srv.URL+"/v1/subscribers/user-42/digests/Comments", nil, "")
		assert.Equal(t, http.StatusBadRequest, bad.code)
		assert.Equal(t, "digest.key", bad.body["field"])
	})

	t.Run("the OpenAPI document has the route", func(t *testing.T) {
		var doc struct {
			Paths map[string]map[string]any `yaml:"paths"`
		}
		require.NoError(t, yaml.Unmarshal(httpapi.OpenAPI, &doc))
		assert.Contains(t, doc.Paths["/v1/subscribers/{id}/digests/{key}"], "get")
	})
}
