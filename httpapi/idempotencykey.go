package httpapi

import (
	"errors"
	"fmt"
	"strings"

	"github.com/onceflow/onceflow"
)

// idempotencyKey reads the Idempotency-Key header as the IETF draft
// (draft-ietf-httpapi-idempotency-key-header) defines it: an RFC 8941 Item
// whose value is a String, i.e. the key in double quotes, with `\"` and
// `\\` the only escapes. Nothing looser is accepted:
//
//   - a bare token (Idempotency-Key: order-1) is refused with a message
//     saying to quote it, since RFC 8941 parses it as a Token, not a String;
//   - parameters (`"order-1";a=1`) are refused: the draft defines none, and
//     a caller who adds one expects it to mean something, while ignoring it
//     would make two different requests the same key;
//   - several header lines are refused: RFC 8941 joins them with commas,
//     which makes a List, not an Item.
//
// The key inside the quotes must then pass onceflow.ValidateKey.
func idempotencyKey(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", errors.New("the Idempotency-Key header is required")
	case 1:
	default:
		return "", errors.New("the Idempotency-Key header is given more than once; it must be one quoted string")
	}
	// Field values reach us with OWS trimmed; RFC 8941 4.2 discards
	// leading and trailing SP as well.
	v := strings.Trim(values[0], " \t")
	if v == "" {
		return "", errors.New("the Idempotency-Key header is empty")
	}
	if v[0] != '"' {
		hint := `"order-1"`
		if onceflow.ValidateKey(v) == nil {
			hint = `"` + v + `"`
		}
		return "", fmt.Errorf("the Idempotency-Key header must be a quoted string (an RFC 8941 sf-string): send %s, with its double quotes", hint)
	}
	key, rest, err := parseSFString(v)
	if err != nil {
		return "", fmt.Errorf("the Idempotency-Key header is not a valid quoted string: %w", err)
	}
	switch {
	case rest == "":
	case rest[0] == ';':
		return "", errors.New("the Idempotency-Key header has parameters after the quoted key; none are defined, so none are accepted")
	case strings.TrimLeft(rest, " ")[0] == ',':
		return "", errors.New("the Idempotency-Key header is a list; it must be one quoted string")
	default:
		return "", errors.New("the Idempotency-Key header has characters after the closing quote")
	}
	if err := onceflow.ValidateKey(key); err != nil {
		var ve *onceflow.ValidationError
		errors.As(err, &ve)
		return "", fmt.Errorf("the Idempotency-Key header %s", ve.Reason)
	}
	return key, nil
}

// parseSFString parses the sf-string at the start of s (RFC 8941 4.2.5)
// and returns its value and what follows the closing quote.
func parseSFString(s string) (value, rest string, err error) {
	if s == "" || s[0] != '"' {
		return "", s, errors.New("it does not start with a double quote")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
			if i == len(s) {
				return "", "", errors.New("it ends inside an escape")
			}
			if s[i] != '"' && s[i] != '\\' {
				return "", "", fmt.Errorf("it escapes %q at byte %d; only \\\" and \\\\ are escapes", s[i], i)
			}
			b.WriteByte(s[i])
		case c == '"':
			return b.String(), s[i+1:], nil
		case c < 0x20 || c > 0x7e:
			return "", "", fmt.Errorf("it has %q at byte %d; only printable ASCII is allowed", c, i)
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("it has no closing double quote")
}
