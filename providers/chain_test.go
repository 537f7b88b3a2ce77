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

// looking is a Resolver with a fixed lookup answer.
type looking struct {
	scripted
	found bool
	err   error
}

func (l *looking) Lookup(context.Context, providers.Message, time.Time) (providers.Receipt, bool, error) {
	return providers.Receipt{ID: "SM1"}, l.found, l.err
}

func TestChainLookupAsksEveryProvider(t *testing.T) {
	named := func(ps ...providers.Provider) providers.Chain {
		var c providers.Chain
		for i, p := range ps {
			c = append(c, providers.Named{Name: []string{"account 1", "account 2"}[i], Provider: p})
		}
		return c
	}
	r, found, err := named(&looking{}, &looking{found: true}).Lookup(context.Background(), providers.Message{}, time.Now())
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, "SM1 via account 2", r.ID)

	_, found, err = named(&looking{}, &looking{}).Lookup(context.Background(), providers.Message{}, time.Now())
	require.NoError(t, err)
	assert.False(t, found, "not found needs every provider to say so")

	_, _, err = named(&looking{}, &looking{err: errors.New("timeout")}).Lookup(context.Background(), providers.Message{}, time.Now())
	require.Error(t, err)
	assert.False(t, providers.Classify(err).Permanent)

	_, _, err = named(&looking{}, &scripted{}).Lookup(context.Background(), providers.Message{}, time.Now())
	assert.ErrorIs(t, err, providers.ErrNoLookup, "a provider that cannot look up makes the chain unable to")
}
