package providers_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/providers"
)

// scripted answers with a fixed outcome and counts its sends. The chain's
// logic is pure, so a scripted provider is enough here; each real provider
// is tested against a real server in its own package.
type scripted struct {
	err   error
	sends int
}

func (s *scripted) Send(context.Context, providers.Message) (providers.Receipt, error) {
	s.sends++
	if s.err != nil {
		return providers.Receipt{}, s.err
	}
	return providers.Receipt{ID: "ok"}, nil
}

func chain(ps ...*scripted) providers.Chain {
	var c providers.Chain
	for i, p := range ps {
		c = append(c, providers.Named{Name: []string{"relay 1", "relay 2", "relay 3"}[i], Provider: p})
	}
	return c
}

func TestChainFallsBackWhenTheFirstCertainlyDidNotSend(t *testing.T) {
	first := &scripted{err: &providers.Error{Permanent: true, Err: errors.New("550 relay denied")}}
	second := &scripted{}
	r, err := chain(first, second).Send(context.Background(), providers.Message{})
	require.NoError(t, err)
	assert.Equal(t, "ok via relay 2 after relay 1: 550 relay denied", r.ID)
	assert.Equal(t, 1, second.sends)
}

func TestChainStopsWhenAProviderMayHaveSent(t *testing.T) {
	first := &scripted{err: &providers.Error{MaybeSent: true, Err: errors.New("timeout after DATA")}}
	second := &scripted{}
	_, err := chain(first, second).Send(context.Background(), providers.Message{})
	assert.True(t, providers.Classify(err).MaybeSent)
	assert.Zero(t, second.sends, "never hand a possibly sent delivery to another provider")
}

func TestChainFailureIsPermanentOnlyIfEveryProviderRefused(t *testing.T) {
	refused := func() *scripted { return &scripted{err: &providers.Error{Permanent: true, Err: errors.New("550")}} }
	busy := &scripted{err: &providers.Error{RetryAfter: 7 * time.Second, Err: errors.New("421 busy")}}

	_, err := chain(refused(), refused()).Send(context.Background(), providers.Message{})
	assert.True(t, providers.Classify(err).Permanent)

	_, err = chain(refused(), busy).Send(context.Background(), providers.Message{})
	pe := providers.Classify(err)
	assert.False(t, pe.Permanent)
	assert.Equal(t, 7*time.Second, pe.RetryAfter)
	assert.Contains(t, err.Error(), "relay 1: 550; relay 2: 421 busy")
}
