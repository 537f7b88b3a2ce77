package feed_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onceflow/onceflow/feed"
)

// BenchmarkDeliver measures one in-app delivery's write-and-commit, spread
// over 100 subscribers from parallel clients.
func BenchmarkDeliver(b *testing.B) {
	s := feed.New(server.Client(b), time.Hour, time.Hour)
	ctx := context.Background()
	prefix := strconv.FormatInt(time.Now().UnixNano(), 36)
	var n atomic.Int64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id := prefix + "-" + strconv.FormatInt(i, 10)
			d := feed.Delivery{Tenant: "bench", Subscriber: "s" + strconv.FormatInt(i%100, 10), DeliveryID: "dlv_" + id,
				Key: "k-" + id, Subject: "Hello", Body: "A comment on your post", Fingerprint: "fp", Token: id + "/1", Activity: id}
			if _, _, err := s.Deliver(ctx, d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPage measures reading the newest page of 20 of a feed of 1,000.
func BenchmarkPage(b *testing.B) {
	s := feed.New(server.Client(b), time.Hour, time.Hour)
	ctx := context.Background()
	sub := "page-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range 1000 {
		id := sub + "-" + strconv.Itoa(i)
		if _, _, err := s.Deliver(ctx, feed.Delivery{Tenant: "bench", Subscriber: sub, DeliveryID: "dlv_" + id, Body: "body", Token: id + "/1", Activity: id}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Page(ctx, "bench", sub, "", 20); err != nil {
			b.Fatal(err)
		}
	}
}
