package devstack_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/internal/devstack"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/starter"
)

// Distinctive content of the encrypted notification: none of it may be
// stored in clear.
const (
	secretSubject = "Parcel for Mrs Quimby"
	secretBody    = "Left with the neighbour at 12 Acacia Avenue"
	secretPath    = "/inbox/quimby-7781"
)

func randomKeys(t *testing.T) *codec.Keys {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	keys, err := codec.ParseKeys("dev-1:" + base64.StdEncoding.EncodeToString(b))
	require.NoError(t, err)
	return keys
}

// TestEncryptedDevStack runs onceflow dev with ONCEFLOW_CODEC_KEYS set and
// checks, for one notification with a distinctive subject, body and
// recipient: that it is delivered; that neither the history a client
// without the codec reads nor the SQLite database holds any of them in
// clear; that the API's codec endpoint decrypts what the worker encrypted,
// for the Web UI's origin; and that the Web UI, in Chromium, shows the
// decrypted input.
func TestEncryptedDevStack(t *testing.T) {
	dir := t.TempDir()
	var logs testenv.Buffer
	cfg := config(t, dir, &logs)
	cfg.CodecKeys = randomKeys(t)
	s := start(t, cfg)
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rcv := testenv.NewReceiver(t)
	postJSON(t, s.APIURL, "dev-codec-1", `{"subject":"`+secretSubject+`","body":"`+secretBody+`",`+
		`"deliveries":[{"channel":"webhook","to":"`+rcv.URL+secretPath+`"}]}`)
	res, err := starter.New(s.Client, "").Wait(ctx, "dev-codec-1")
	require.NoError(t, err)
	assert.Equal(t, onceflow.Delivered, res.Deliveries[0].Status)
	st, err := starter.New(s.Client, "").Status(ctx, "dev-codec-1")
	require.NoError(t, err)

	// A client without the codec sees ciphertext only.
	raw, err := client.Dial(client.Options{HostPort: s.TemporalAddress, Namespace: devstack.Namespace})
	require.NoError(t, err)
	defer raw.Close()
	h := testenv.History(t, raw, st.WorkflowID, st.RunID)
	b, err := proto.Marshal(h)
	require.NoError(t, err)
	assertNoSecrets(t, "the history", b)
	input := h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
	require.Equal(t, codec.Encoding, string(input.Payloads[0].Metadata["encoding"]))

	uiOrigin := s.UIURL
	t.Run("codec endpoint decodes what the worker encoded", func(t *testing.T) {
		body, err := protojson.Marshal(input)
		require.NoError(t, err)
		req, err := http.NewRequest("POST", s.APIURL+"/codec/decode", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", devstack.Namespace)
		req.Header.Set("Origin", uiOrigin)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		out, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
		assert.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
		var decoded commonpb.Payloads
		require.NoError(t, protojson.Unmarshal(out, &decoded))
		assert.Contains(t, string(decoded.Payloads[0].Data), secretBody)
		assert.Contains(t, string(decoded.Payloads[0].Data), rcv.URL+secretPath)

		pre, err := http.NewRequest("OPTIONS", s.APIURL+"/codec/decode", nil)
		require.NoError(t, err)
		pre.Header.Set("Origin", uiOrigin)
		pre.Header.Set("Access-Control-Request-Method", "POST")
		pre.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
		resp, err = http.DefaultClient.Do(pre)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusNoContent, resp.StatusCode)
		assert.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
		assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "X-Namespace")
	})

	t.Run("Web UI shows the decrypted input", func(t *testing.T) {
		if testing.Short() {
			t.Skip("drives the Web UI in Chromium; -short skips it")
		}
		chromium, err := exec.LookPath("chromium")
		require.NoError(t, err, "the Web UI test needs Debian's chromium (apt-get install -y chromium)")
		page := s.UIURL + "/namespaces/" + devstack.Namespace + "/workflows/" + url.PathEscape(st.WorkflowID) + "/" + st.RunID + "/history"
		var dom string
		require.Eventually(t, func() bool {
			out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--user-data-dir="+t.TempDir(), "--virtual-time-budget=15000", "--dump-dom", page).Output()
			dom = string(out)
			return err == nil && strings.Contains(dom, "Acacia Avenue")
		}, 60*time.Second, time.Second, "the workflow's page never showed the decrypted input")
		assert.Contains(t, dom, "Mrs Quimby")
	})

	// Everything the stack wrote to disk once it has stopped: the Temporal
	// database (SQLite and its write-ahead log), the server's log and
	// Redis's append-only file.
	s.Stop()
	files, err := filepath.Glob(filepath.Join(dir, "temporal.db*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var db []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		db = append(db, b...)
	}
	assertNoSecrets(t, "the Temporal database", db)
	assert.True(t, bytes.Contains(db, []byte(st.WorkflowID)), "the search found the workflow's rows")
	assert.True(t, bytes.Contains(db, []byte(codec.Encoding)), "the search reaches the stored payloads")
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		assertNoSecrets(t, path, b)
		return err
	}))
}

func assertNoSecrets(t *testing.T, where string, b []byte) {
	t.Helper()
	lower := bytes.ToLower(b)
	for _, s := range []string{"Quimby", "Acacia", "neighbour", secretPath} {
		assert.False(t, bytes.Contains(lower, []byte(strings.ToLower(s))), "%s holds %q in clear", where, s)
	}
}

// postJSON starts the notification body with key through the API.
func postJSON(t *testing.T, apiURL, key, body string) {
	req, err := http.NewRequest("POST", apiURL+"/v1/notifications", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", `"`+key+`"`)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(out))
}
