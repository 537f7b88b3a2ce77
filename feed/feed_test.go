package feed_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/internal/testenv"
)

var server *testenv.Backend

func TestMain(m *testing.M) { testenv.RunOnBoth(m, &server) }

func delivery(sub, id, activity, attempt string) feed.Delivery {
	return feed.Delivery{Tenant: "acme", Subscriber: sub, DeliveryID: id, Key: "k-" + id, Subject: "Hello", Body: "body of " + id,
		Fingerprint: "fp1", Activity: activity, Token: activity + "/" + attempt}
}

// One atomic step writes the item and commits the record: a later attempt
// of the same activity finds it its own, another activity finds it sent,
// another payload is a conflict, and the feed holds the item once.
func TestDeliverWritesOnceAndCommitsInOneStep(t *testing.T) {
	ctx := context.Background()
	s := feed.New(server.Client(t), time.Hour, time.Hour)
	sub := "u-" + t.Name()
	d := delivery(sub, "dlv_1", "wf/run/dlv_1", "1")

	out, receipt, err := s.Deliver(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, feed.Written, out)
	assert.Equal(t, "feed item dlv_1", receipt)

	d.Token = d.Activity + "/2"
	out, _, err = s.Deliver(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, feed.Mine, out, "a retry of the same activity")

	other := delivery(sub, "dlv_1", "wf/run2/dlv_1", "1")
	out, _, err = s.Deliver(ctx, other)
	require.NoError(t, err)
	assert.Equal(t, feed.AlreadySent, out, "another run of the notification")

	other.Fingerprint = "fp2"
	other.Body = "another payload"
	out, _, err = s.Deliver(ctx, other)
	require.NoError(t, err)
	assert.Equal(t, feed.Conflict, out)

	p, err := s.Page(ctx, "acme", sub, "", 10)
	require.NoError(t, err)
	require.Len(t, p.Items, 1)
	assert.Equal(t, "body of dlv_1", p.Items[0].Body)
	assert.Equal(t, "k-dlv_1", p.Items[0].Key)
	assert.False(t, p.Items[0].Read)
	assert.Equal(t, 1, p.Unread)

	// Another tenant's subscriber of the same id has a feed of its own.
	p, err = s.Page(ctx, "other", sub, "", 10)
	require.NoError(t, err)
	assert.Empty(t, p.Items)
}

func TestPagesNewestFirstWithCursorsAndUnreadCounts(t *testing.T) {
	ctx := context.Background()
	s := feed.New(server.Client(t), time.Hour, time.Hour)
	sub := "u-" + t.Name()
	const n = 25
	for i := range n {
		id := fmt.Sprintf("dlv_%02d", i)
		_, _, err := s.Deliver(ctx, delivery(sub, id, "a/"+id, "1"))
		require.NoError(t, err)
	}
	var seen []string
	cursor := ""
	for {
		p, err := s.Page(ctx, "acme", sub, cursor, 10)
		require.NoError(t, err)
		assert.Equal(t, n, p.Unread)
		for _, it := range p.Items {
			seen = append(seen, it.ID)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	require.Len(t, seen, n)
	for i, id := range seen {
		assert.Equal(t, fmt.Sprintf("dlv_%02d", n-1-i), id, "newest first")
	}

	require.NoError(t, s.MarkRead(ctx, "acme", sub, "dlv_03"))
	require.NoError(t, s.MarkRead(ctx, "acme", sub, "dlv_03"), "again is harmless")
	assert.ErrorIs(t, s.MarkRead(ctx, "acme", sub, "dlv_nope"), feed.ErrNoItem)
	p, err := s.Page(ctx, "acme", sub, "", 100)
	require.NoError(t, err)
	assert.Equal(t, n-1, p.Unread)
	assert.True(t, p.Items[n-1-3].Read)
	assert.False(t, p.Items[0].Read)

	after, err := s.After(ctx, "acme", sub, p.Items[2].Cursor, 10)
	require.NoError(t, err)
	require.Len(t, after, 2)
	assert.Equal(t, p.Items[1].ID, after[0].ID, "oldest first")

	marked, err := s.MarkAllRead(ctx, "acme", sub)
	require.NoError(t, err)
	assert.Equal(t, n-1, marked)
	p, err = s.Page(ctx, "acme", sub, "", 5)
	require.NoError(t, err)
	assert.Zero(t, p.Unread)
	assert.True(t, p.Items[0].Read)

	_, err = s.Page(ctx, "acme", sub, "12x", 5)
	assert.ErrorIs(t, err, feed.ErrCursor)
}

func TestItemsExpire(t *testing.T) {
	ctx := context.Background()
	s := feed.New(server.Client(t), time.Second, time.Hour)
	sub := "u-" + t.Name()
	_, _, err := s.Deliver(ctx, delivery(sub, "dlv_old", "a/old", "1"))
	require.NoError(t, err)
	time.Sleep(1100 * time.Millisecond)
	_, _, err = s.Deliver(ctx, delivery(sub, "dlv_new", "a/new", "1"))
	require.NoError(t, err)
	p, err := s.Page(ctx, "acme", sub, "", 10)
	require.NoError(t, err)
	var ids []string
	for _, it := range p.Items {
		ids = append(ids, it.ID)
	}
	assert.NotContains(t, ids, "dlv_old")
	assert.ErrorIs(t, s.MarkRead(ctx, "acme", sub, "dlv_old"), feed.ErrNoItem)
	// The expired item's record outlives it: the delivery is not written
	// again.
	out, _, err := s.Deliver(ctx, delivery(sub, "dlv_old", "a/old", "2"))
	require.NoError(t, err)
	assert.Equal(t, feed.Mine, out)
}

func TestSubscribeReceivesNewItems(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := feed.New(server.Client(t), time.Hour, time.Hour)
	sub := "u-" + t.Name()
	live, err := s.Subscribe(ctx, "acme", sub)
	require.NoError(t, err)
	defer func() { _ = live.Close() }()
	other, err := s.Subscribe(ctx, "acme", sub+"-other")
	require.NoError(t, err)
	defer func() { _ = other.Close() }()
	_, _, err = s.Deliver(ctx, delivery(sub, "dlv_live", "a/live", "1"))
	require.NoError(t, err)
	select {
	case it := <-live.C:
		assert.Equal(t, "dlv_live", it.ID)
		assert.Equal(t, "body of dlv_live", it.Body)
		assert.NotEmpty(t, it.Cursor)
	case <-ctx.Done():
		t.Fatal("the new item never arrived")
	}
	// A retry writes nothing and publishes nothing; the other feed's
	// subscription got nothing.
	_, _, err = s.Deliver(ctx, delivery(sub, "dlv_live", "a/live", "2"))
	require.NoError(t, err)
	_, _, err = s.Deliver(ctx, delivery(sub, "dlv_live2", "a/live2", "1"))
	require.NoError(t, err)
	it := <-live.C
	assert.Equal(t, "dlv_live2", it.ID)
	select {
	case it := <-other.C:
		t.Fatalf("another subscriber's stream got %s", it.ID)
	default:
	}
}

// Every key of one feed hashes to one slot: the delivery script touches the
// record and the feed's keys together, and a cluster refuses that otherwise.
func TestOneFeedIsOneSlot(t *testing.T) {
	if server.Cluster == nil {
		t.Skip("slots exist only on a cluster: runs in the cluster pass")
	}
	rdb := server.Cluster.Client(t)
	ctx := context.Background()
	s := feed.New(rdb, time.Hour, time.Hour)
	_, _, err := s.Deliver(ctx, delivery("u-slot", "dlv_slot", "a/slot", "1"))
	require.NoError(t, err)
	keys, err := testenv.Keys(ctx, rdb, "onceflow:feed:{acme@u-slot}:*")
	require.NoError(t, err)
	require.Len(t, keys, 4)
	slot := rdb.ClusterKeySlot(ctx, keys[0]).Val()
	for _, k := range keys {
		assert.Equal(t, slot, rdb.ClusterKeySlot(ctx, k).Val(), k)
	}
}

func TestTokens(t *testing.T) {
	now := time.Now()
	g, err := feed.NewSigner("0123456789abcdef0123456789abcdef")
	require.NoError(t, err)
	tok, exp, err := g.Mint("acme", "u1", time.Minute, now)
	require.NoError(t, err)
	assert.WithinDuration(t, now.Add(time.Minute), exp, time.Second)
	c, err := g.Verify(tok, now)
	require.NoError(t, err)
	assert.Equal(t, "acme", c.Tenant)
	assert.Equal(t, "u1", c.Subscriber)

	_, err = g.Verify(tok, now.Add(2*time.Minute))
	assert.ErrorContains(t, err, "expired")
	tampered := []byte(tok)
	tampered[len(feed.TokenPrefix)+3] ^= 1
	_, err = g.Verify(string(tampered), now)
	assert.ErrorIs(t, err, feed.ErrToken)
	other, err := feed.NewSigner("another secret of at least 32 bytes!!")
	require.NoError(t, err)
	_, err = other.Verify(tok, now)
	assert.ErrorContains(t, err, "signature")
	for _, bad := range []string{"", "ofs1.", "x", "ofs1.abc", tok + "x"} {
		_, err = g.Verify(bad, now)
		assert.ErrorIs(t, err, feed.ErrToken, bad)
	}
	_, err = feed.NewSigner("short")
	assert.ErrorContains(t, err, feed.EnvTokenSecret)
	_, _, err = g.Mint("acme", "a@b.c", 0, now)
	assert.ErrorContains(t, err, "subscriber")
	_, _, err = g.Mint("acme", "u1", 48*time.Hour, now)
	assert.ErrorContains(t, err, "ttl")
}

func TestTTLFromEnv(t *testing.T) {
	env := func(v string) func(string) string {
		return func(name string) string {
			if name == feed.EnvTTL {
				return v
			}
			return ""
		}
	}
	d, err := feed.TTLFromEnv(env(""))
	require.NoError(t, err)
	assert.Equal(t, feed.DefaultTTL, d)
	d, err = feed.TTLFromEnv(env("48h"))
	require.NoError(t, err)
	assert.Equal(t, 48*time.Hour, d)
	for _, bad := range []string{"soon", "-1h", "10ms"} {
		_, err = feed.TTLFromEnv(env(bad))
		assert.ErrorContains(t, err, feed.EnvTTL+`="`+bad+`"`)
	}
}

// With WaitReplicas, a write that too few replicas acknowledged is an
// error; the item and its record are kept or lost together, so the next
// attempt finds them its own (or writes them again).
func TestWaitReplicas(t *testing.T) {
	ctx := context.Background()
	replicas := 0 // a single server has none; the cluster one per primary
	if server.Cluster != nil {
		replicas = 1
	}
	rdb := server.Client(t)
	d := delivery("u-"+t.Name(), "dlv_wait", "a/wait", "1")
	_, _, err := feed.New(rdb, time.Hour, time.Hour, feed.WaitReplicas(replicas+1, 200*time.Millisecond)).Deliver(ctx, d)
	assert.ErrorIs(t, err, feed.ErrNotReplicated)
	assert.ErrorContains(t, err, fmt.Sprintf("%d acknowledged", replicas))

	d.Token = d.Activity + "/2"
	out, _, err := feed.New(rdb, time.Hour, time.Hour, feed.WaitReplicas(replicas, time.Second)).Deliver(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, feed.Mine, out)
}

// TestEveryOneCharacterChangeOfATokenIsRefused: a subscriber token has one
// spelling. Each character replaced by each other character a URL could
// carry is refused, the signature's last character included, whose unused
// low bits a lenient base64 decoder ignores.
func TestEveryOneCharacterChangeOfATokenIsRefused(t *testing.T) {
	now := time.Now()
	g, err := feed.NewSigner("0123456789abcdef0123456789abcdef")
	require.NoError(t, err)
	tok, _, err := g.Mint("acme", "u1", time.Minute, now)
	require.NoError(t, err)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="
	for i := range tok {
		for _, c := range alphabet {
			if byte(c) == tok[i] {
				continue
			}
			changed := tok[:i] + string(c) + tok[i+1:]
			_, err := g.Verify(changed, now)
			require.ErrorIs(t, err, feed.ErrToken, "position %d changed to %q was accepted", i, c)
		}
	}
}
