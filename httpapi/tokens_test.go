package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/httpapi"
)

func TestTokenFileErrorsNameTheLineAndNotTheHash(t *testing.T) {
	hash := strings.Fields(httpapi.HashLine("acme", acmeToken))[1]
	cases := map[string]struct {
		line, want string
	}{
		"one field":        {"acme", "line 3: has 1 fields"},
		"token in clear":   {"acme " + acmeToken, "line 3: the second field must start with \"sha256:\""},
		"short hash":       {"acme sha256:abcd", "line 3: the hash must be 64 hex digits"},
		"not hex":          {"acme sha256:" + strings.Repeat("g", 64), "line 3: the hash must be 64 hex digits"},
		"bad tenant":       {"ac/me " + hash, `line 3: "ac/me" is not a tenant name`},
		"tenant with @":    {"acme@eu " + hash, `line 3: "acme@eu" is not a tenant name`},
		"same token twice": {"globex " + hash, "line 3: repeats the token of line 2"},
		"three fields":     {"acme " + hash + " extra", "line 3: has 3 fields"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens")
			writeTokens(t, path, "# first line is a comment", "acme "+hash, c.line)
			_, err := httpapi.LoadTokens(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), hash[len("sha256:"):], "the hash is not repeated")
			assert.NotContains(t, err.Error(), acmeToken, "the token is not repeated")
		})
	}
	_, err := httpapi.LoadTokens(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorContains(t, err, httpapi.EnvTokensFile)
}

func TestTokensMapToTheirTenantAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, httpapi.HashLine("acme", acmeToken), "   # indented comment", httpapi.HashLine("globex", globexToken))
	tokens, err := httpapi.LoadTokens(path)
	require.NoError(t, err)
	assert.Equal(t, 2, tokens.Len())
	for token, want := range map[string]string{acmeToken: "acme", globexToken: "globex"} {
		tenant, ok := tokens.Tenant(token)
		assert.True(t, ok)
		assert.Equal(t, want, tenant)
	}
	_, ok := tokens.Tenant(acmeToken + "x")
	assert.False(t, ok)
	_, ok = tokens.Tenant("")
	assert.False(t, ok)

	// The middleware, as every route and the codec endpoint use it.
	var served []string
	h := tokens.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served = append(served, r.URL.Path) }))
	code := func(token string) int {
		req := httptest.NewRequest("POST", "/codec/decode", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	assert.Equal(t, http.StatusOK, code(acmeToken))
	assert.Equal(t, http.StatusUnauthorized, code("nope"))
	assert.Len(t, served, 1, "a refused request does not reach the handler")

	// Rotate: acme's old token out, a new one in.
	const newToken = "acme-new-fedcba9876543210fedcba9876543210"
	writeTokens(t, path, httpapi.HashLine("acme", newToken), httpapi.HashLine("globex", globexToken))
	require.NoError(t, tokens.Reload())
	assert.Equal(t, http.StatusOK, code(newToken))
	assert.Equal(t, http.StatusUnauthorized, code(acmeToken), "a removed token is refused")
	assert.Equal(t, http.StatusOK, code(globexToken))

	// A broken edit keeps the tokens in force.
	writeTokens(t, path, "acme "+newToken)
	assert.ErrorContains(t, tokens.Reload(), "line 1")
	assert.Equal(t, http.StatusOK, code(newToken))
	assert.Equal(t, http.StatusOK, code(globexToken))
}

// ReloadIfChanged picks up an edited file without a signal, reports a
// broken edit once and keeps the tokens in force, and does nothing while
// the file is unchanged.
func TestTokensReloadWhenTheFileChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, httpapi.HashLine("acme", acmeToken))
	tokens, err := httpapi.LoadTokens(path)
	require.NoError(t, err)
	changed, err := tokens.ReloadIfChanged()
	require.NoError(t, err)
	assert.False(t, changed, "the file is as loaded")

	writeTokens(t, path, httpapi.HashLine("globex", globexToken))
	changed, err = tokens.ReloadIfChanged()
	require.NoError(t, err)
	assert.True(t, changed)
	_, ok := tokens.Tenant(acmeToken)
	assert.False(t, ok, "the removed token is revoked")
	tenant, ok := tokens.Tenant(globexToken)
	assert.True(t, ok)
	assert.Equal(t, "globex", tenant)

	writeTokens(t, path, "globex "+globexToken)
	changed, err = tokens.ReloadIfChanged()
	assert.True(t, changed)
	assert.ErrorContains(t, err, "line 1")
	changed, err = tokens.ReloadIfChanged()
	assert.False(t, changed, "a broken file is reported once per change")
	assert.NoError(t, err)
	_, ok = tokens.Tenant(globexToken)
	assert.True(t, ok, "and the tokens in force stay")
}
