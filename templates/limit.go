package templates

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/onceflow/onceflow"
)

// MaxRendered bounds each rendered part, as Validate bounds a body given
// in clear: a template ranging over a large list, or nested ranges, must
// not make a multi-megabyte message, nor a workflow input that size.
const MaxRendered = onceflow.MaxBodyBytes

var errTooLarge = errors.New("rendered output too large")

// limited is a buffer that refuses to grow past MaxRendered, so that a
// template that blows up stops at the limit instead of filling memory.
type limited struct{ bytes.Buffer }

func (b *limited) Write(p []byte) (int, error) {
	if b.Len()+len(p) > MaxRendered {
		return 0, errTooLarge
	}
	return b.Buffer.Write(p)
}

// tooLarge is the error of a part that rendered past MaxRendered.
func tooLarge(name, file string) error {
	return &Error{Template: name, Reason: fmt.Sprintf("%s renders more than %d bytes, the body limit; nothing was sent", file, MaxRendered)}
}
