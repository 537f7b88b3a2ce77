package httpapi

import (
	"strings"
	"testing"

	"github.com/onceflow/onceflow"
)

// sfString serializes s as an RFC 8941 sf-string (4.1.6): a reference
// independent of the parser under test.
func sfString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// FuzzIdempotencyKey: the parser never panics; whatever it accepts is a
// valid key; and every valid key, serialized as an sf-string, parses back
// to itself.
func FuzzIdempotencyKey(f *testing.F) {
	f.Add(`"order-1"`)
	f.Fuzz(func(t *testing.T, header string) {
		key, err := idempotencyKey([]string{header})
		if err == nil {
			if verr := onceflow.ValidateKey(key); verr != nil {
				t.Fatalf("accepted %q as key %q, which is invalid: %v", header, key, verr)
			}
		}
		if onceflow.ValidateKey(header) != nil {
			return
		}
		got, err := idempotencyKey([]string{sfString(header)})
		if err != nil || got != header {
			t.Fatalf("valid key %q serialized as %s parsed as %q, %v", header, sfString(header), got, err)
		}
	})
}
