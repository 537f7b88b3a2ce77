package providers

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRedactKeepsClassificationAndWrapping(t *testing.T) {
	m := Message{To: "+15551234567", Subject: "Your code", Body: "Code 424242 expires soon"}
	err := Redact(&Error{Permanent: true, RetryAfter: time.Second, Err: fmt.Errorf("sms: %w: %s rejected %s", ErrNoLookup, m.To, m.Body)}, m)
	pe := Classify(err)
	assert.True(t, pe.Permanent)
	assert.Equal(t, time.Second, pe.RetryAfter)
	assert.ErrorIs(t, err, ErrNoLookup)
	assert.Equal(t, "sms: "+ErrNoLookup.Error()+": [recipient] rejected [body]", err.Error())
	assert.Equal(t, "answer: [body]…", Redact(errors.New("answer: Code 424242 exp…"), m).Error(), "an excerpt's cut echo")
	plain := errors.New("receiver answered HTTP 500")
	assert.Same(t, plain, Redact(plain, m), "nothing to take out")
	assert.Nil(t, Redact(nil, m))
}
