package main

import (
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/starter"
)

// EnvMaxSendAhead names the variable that bounds how far ahead send_at may
// be for notifications that `onceflow api` and `onceflow send` accept.
const EnvMaxSendAhead = "ONCEFLOW_MAX_SEND_AHEAD"

// maxSendAhead reads EnvMaxSendAhead: a positive Go duration; unset means
// onceflow.DefaultMaxSendAhead.
func (a *app) maxSendAhead() (starter.Option, error) {
	v := a.getenv(EnvMaxSendAhead)
	if v == "" {
		return starter.WithMaxSendAhead(onceflow.DefaultMaxSendAhead), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return nil, inputErrorf("%s=%q is not a positive duration such as 8760h", EnvMaxSendAhead, v)
	}
	return starter.WithMaxSendAhead(d), nil
}
