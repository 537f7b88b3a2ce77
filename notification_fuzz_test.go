package onceflow_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/onceflow/onceflow"
)

// FuzzDecodeNotification: no input makes the decoder or Validate panic,
// and every error either returns is a *ValidationError naming a field, as
// the API's 400 answers and the CLI's exit code 2 rely on.
func FuzzDecodeNotification(f *testing.F) {
	f.Add([]byte(`{"key":"order-1","body":"hi","deliveries":[{"channel":"webhook","to":"https://example.com/h"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := onceflow.DecodeNotification(bytes.NewReader(data))
		if err == nil {
			err = n.Validate()
		}
		if err == nil {
			return
		}
		var ve *onceflow.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("error %T is not a *ValidationError: %v", err, err)
		}
		if ve.Field == "" {
			t.Fatalf("error names no field: %v", err)
		}
	})
}
