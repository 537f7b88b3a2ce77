package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBadMaxSendAheadIsAnInputError(t *testing.T) {
	for _, v := range []string{"soon", "-1h", "0s"} {
		r := run(context.Background(), mapEnv{EnvMaxSendAhead: v}, "send", "--key", "k", "--body", "b", "--channel", "webhook", "--to", "https://example.com/h")
		assert.Equal(t, exitInput, r.code, v)
		assert.Contains(t, r.stderr, EnvMaxSendAhead+`="`+v+`" is not a positive duration`, v)
	}
}
