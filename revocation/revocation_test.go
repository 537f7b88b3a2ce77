package revocation_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/revocation"
)

var server *testenv.Backend

func TestMain(m *testing.M) { testenv.RunOnBoth(m, &server) }

// A revocation refuses what was issued at or before it, in its tenant
// only, and never moves back: a host whose clock is behind cannot
// re-admit what another refused.
func TestNotBeforeIsPerTenantAndOnlyMovesForward(t *testing.T) {
	ctx := context.Background()
	s := revocation.New(server.Client(t))
	sub := "u-" + t.Name()
	at := time.UnixMilli(time.Now().UnixMilli()).UTC()

	nb, err := s.NotBefore(ctx, "acme", sub)
	require.NoError(t, err)
	assert.True(t, nb.IsZero(), "never revoked")
	require.NoError(t, s.Check(ctx, "acme", sub, at.Add(-time.Hour)))

	nb, err = s.Revoke(ctx, "acme", sub, at)
	require.NoError(t, err)
	assert.Equal(t, at, nb)
	assert.ErrorIs(t, s.Check(ctx, "acme", sub, at.Add(-time.Hour)), revocation.ErrRevoked, "issued before")
	assert.ErrorIs(t, s.Check(ctx, "acme", sub, at), revocation.ErrRevoked, "issued at the same millisecond")
	assert.NoError(t, s.Check(ctx, "acme", sub, at.Add(time.Millisecond)), "issued after")
	assert.NoError(t, s.Check(ctx, "globex", sub, at.Add(-time.Hour)), "another tenant's subscriber of the same id")
	assert.NoError(t, s.Check(ctx, "", sub, at.Add(-time.Hour)), "the single tenant's subscriber of the same id")

	nb, err = s.Revoke(ctx, "acme", sub, at.Add(-time.Minute))
	require.NoError(t, err)
	assert.Equal(t, at, nb, "an earlier time does not move it back")
	assert.ErrorIs(t, s.Check(ctx, "acme", sub, at), revocation.ErrRevoked)

	rdb := server.Client(t)
	ttl, err := rdb.PTTL(ctx, revocation.Key("acme", sub)).Result()
	require.NoError(t, err)
	assert.InDelta(t, revocation.Keep.Seconds(), ttl.Seconds(), 60, "kept as long as what it refuses can live, then dropped")

	var ve *onceflow.ValidationError
	_, err = s.Revoke(ctx, "acme", "a@b.c", at)
	assert.ErrorAs(t, err, &ve)
	_, err = s.Revoke(ctx, "bad tenant", sub, at)
	assert.ErrorAs(t, err, &ve)
}

// The key shares the subscriber's hash tag with its preferences, so it
// is on the same slot of a cluster as the rest of the subscriber's state.
func TestKeyIsInTheSubscribersHashTag(t *testing.T) {
	assert.Equal(t, "onceflow:{prefs:acme@u1}:not-before", revocation.Key("acme", "u1"))
	assert.Equal(t, "onceflow:{prefs:u1}:not-before", revocation.Key("", "u1"))
}
