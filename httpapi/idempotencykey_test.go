package httpapi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIdempotencyKeyIsAnSFString(t *testing.T) {
	cases := []struct {
		name   string
		values []string
		key    string
		// refused: a substring of the error.
		refused string
	}{
		{"quoted", []string{`"order-1"`}, "order-1", ""},
		{"surrounding spaces", []string{`  "order-1" `}, "order-1", ""},
		{"escaped quote and backslash", []string{`"a\"b\\c"`}, `a"b\c`, ""},
		{"every other printable", []string{`"a/b?c#d%25e!$&'()*+,-.:;<=>[]^_` + "`" + `{|}~"`}, "a/b?c#d%25e!$&'()*+,-.:;<=>[]^_`{|}~", ""},
		{"missing", nil, "", "is required"},
		{"empty", []string{""}, "", "is empty"},
		{"bare token", []string{"order-1"}, "", `send "order-1", with its double quotes`},
		{"bare token that is no key", []string{"a b"}, "", `send "order-1"`},
		{"two lines", []string{`"a"`, `"b"`}, "", "more than once"},
		{"list on one line", []string{`"a", "b"`}, "", "is a list"},
		{"parameters", []string{`"a";tenant=x`}, "", "parameters"},
		{"garbage after the quote", []string{`"a"b`}, "", "after the closing quote"},
		{"space then parameter", []string{`"a" ;x`}, "", "after the closing quote"},
		{"unterminated", []string{`"abc`}, "", "no closing double quote"},
		{"ends in an escape", []string{`"abc\`}, "", "inside an escape"},
		{"other escape", []string{`"a\nb"`}, "", "only \\\" and \\\\ are escapes"},
		{"tab inside", []string{"\"a\tb\""}, "", "only printable ASCII"},
		{"non-ASCII inside", []string{`"café"`}, "", "only printable ASCII"},
		{"empty string", []string{`""`}, "", "is required"},
		{"space inside", []string{`"a b"`}, "", "without spaces"},
		{"at sign", []string{`"me@example.com"`}, "", "contains '@'"},
		{"too long", []string{`"` + strings.Repeat("k", 201) + `"`}, "", "at most 200"},
		{"Go-style quoting is not sf-string", []string{`"a\u0041"`}, "", "only \\\" and \\\\ are escapes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key, err := idempotencyKey(c.values)
			if c.refused != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.refused)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.key, key)
		})
	}
}
