// Package recipients keeps a broadcast's recipient list and its recipients'
// problems in Redis, so that neither goes through Temporal: a workflow's
// input and history stay a few kilobytes whether a broadcast has ten
// recipients or 100,000.
//
// A list is named by the broadcast's scoped key and the first 16 characters
// of its payload fingerprint, so that a payload refused as a conflict never
// overwrites the one that runs. Its keys, each chunk under its own hash tag
// so that a Redis Cluster spreads them:
//
//	onceflow:{bcast:<key>/<fp16>}:head     the content and the sizes (JSON)
//	onceflow:{bcast:<key>/<fp16>/<i>}:r    chunk i's recipients (JSON array)
//	onceflow:{bcast:<key>/<fp16>}:pz       indexes of failed and ambiguous
//	onceflow:{bcast:<key>/<fp16>}:ph       recipients (sorted set), and their
//	                                       outcomes by index (hash)
//
// Every key expires after the TTL given when the list was stored; the
// starter gives the dedup window plus the wait until send_at, so a list
// outlives the broadcast's deliveries and its workflow's retention.
package recipients

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow"
)

// List names one broadcast's recipient list.
type List struct {
	// Key is the broadcast's scoped key (onceflow.ScopedKey).
	Key         string `json:"key"`
	Fingerprint string `json:"fingerprint"`
}

func (l List) tag() string {
	fp := l.Fingerprint
	if len(fp) > 16 {
		fp = fp[:16]
	}
	return "bcast:" + l.Key + "/" + fp
}

func (l List) headKey() string          { return "onceflow:{" + l.tag() + "}:head" }
func (l List) chunkKey(i int) string    { return "onceflow:{" + l.tag() + "/" + strconv.Itoa(i) + "}:r" }
func (l List) problemIndexKey() string  { return "onceflow:{" + l.tag() + "}:pz" }
func (l List) problemDetailKey() string { return "onceflow:{" + l.tag() + "}:ph" }

// Head is what every chunk of a broadcast shares.
type Head struct {
	Channel   onceflow.Channel `json:"channel"`
	Subject   string           `json:"subject,omitempty"`
	Body      string           `json:"body,omitempty"`
	Template  string           `json:"template,omitempty"`
	Total     int              `json:"total"`
	ChunkSize int              `json:"chunk_size"`
}

// Chunks is how many chunks the list has.
func (h Head) Chunks() int { return (h.Total + h.ChunkSize - 1) / h.ChunkSize }

// ErrMissing says a list or one of its chunks is not in Redis: it expired,
// or a Redis without persistence lost it.
var ErrMissing = errors.New("recipients: the recipient list is not in Redis (expired, or lost by a Redis restart without persistence)")

// Store keeps recipient lists in Redis or Redis Cluster.
type Store struct {
	rdb redis.Cmdable
}

// New returns a Store on rdb.
func New(rdb redis.Cmdable) *Store { return &Store{rdb: rdb} }

// putBatch bounds how many chunks one pipeline writes, and so the memory
// of their encoding.
const putBatch = 16

// Put stores b's recipients in chunks of chunkSize under l, with its
// content, for ttl. Storing the same list again rewrites it, unchanged.
func (s *Store) Put(ctx context.Context, l List, b onceflow.Broadcast, chunkSize int, ttl time.Duration) error {
	if chunkSize < 1 {
		return fmt.Errorf("recipients: chunk size %d is not positive", chunkSize)
	}
	head, err := json.Marshal(Head{Channel: b.Channel, Subject: b.Subject, Body: b.Body, Template: b.Template, Total: len(b.Recipients), ChunkSize: chunkSize})
	if err != nil {
		return fmt.Errorf("recipients: encode the head of %s: %w", l.Key, err)
	}
	chunks := (len(b.Recipients) + chunkSize - 1) / chunkSize
	for first := 0; first < chunks; first += putBatch {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := first; i < min(first+putBatch, chunks); i++ {
				data, err := json.Marshal(b.Recipients[i*chunkSize : min((i+1)*chunkSize, len(b.Recipients))])
				if err != nil {
					return fmt.Errorf("encode chunk %d: %w", i, err)
				}
				p.Set(ctx, l.chunkKey(i), data, ttl)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("recipients: store the list of %s: %w", l.Key, err)
		}
	}
	// The head goes last: a list with a head is complete.
	if err := s.rdb.Set(ctx, l.headKey(), head, ttl).Err(); err != nil {
		return fmt.Errorf("recipients: store the list of %s: %w", l.Key, err)
	}
	return nil
}

// Head returns the list's content and sizes, or ErrMissing.
func (s *Store) Head(ctx context.Context, l List) (Head, error) {
	var h Head
	if err := s.get(ctx, l.headKey(), &h); err != nil {
		return Head{}, fmt.Errorf("recipients: head of %s: %w", l.Key, err)
	}
	return h, nil
}

// Chunk returns chunk i's recipients, or ErrMissing.
func (s *Store) Chunk(ctx context.Context, l List, i int) ([]onceflow.Recipient, error) {
	var rs []onceflow.Recipient
	if err := s.get(ctx, l.chunkKey(i), &rs); err != nil {
		return nil, fmt.Errorf("recipients: chunk %d of %s: %w", i, l.Key, err)
	}
	return rs, nil
}

func (s *Store) get(ctx context.Context, key string, v any) error {
	data, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return ErrMissing
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// Problem is a recipient whose delivery failed or may have been made more
// than once (or not at all).
type Problem struct {
	// Index is the recipient's place in the broadcast, from 0.
	Index  int             `json:"index"`
	ID     string          `json:"id"`
	Status onceflow.Status `json:"status"`
	Reason string          `json:"reason,omitempty"`
}

// Record replaces what is known of the problems of the recipients from
// first to first+n-1 with problems (each within that range): the others
// in the range settled well, perhaps in a re-run of the broadcast after an
// earlier run recorded them as problems. The problems expire with the
// list.
func (s *Store) Record(ctx context.Context, l List, first, n int, problems []Problem) error {
	ttl, err := s.rdb.PTTL(ctx, l.headKey()).Result()
	if err != nil {
		return fmt.Errorf("recipients: record the problems of %s: %w", l.Key, err)
	}
	if ttl <= 0 {
		// The list is gone (or never expires): keep the problems for a
		// day, long enough for a caller to read them.
		ttl = 24 * time.Hour
	}
	has := make(map[int]bool, len(problems))
	for _, p := range problems {
		has[p.Index] = true
	}
	var clean []any
	for i := first; i < first+n; i++ {
		if !has[i] {
			clean = append(clean, strconv.Itoa(i))
		}
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if len(clean) > 0 {
			p.ZRem(ctx, l.problemIndexKey(), clean...)
			fields := make([]string, len(clean))
			for i, c := range clean {
				fields[i] = c.(string)
			}
			p.HDel(ctx, l.problemDetailKey(), fields...)
		}
		for _, pr := range problems {
			data, err := json.Marshal(pr)
			if err != nil {
				return err
			}
			idx := strconv.Itoa(pr.Index)
			p.ZAdd(ctx, l.problemIndexKey(), redis.Z{Score: float64(pr.Index), Member: idx})
			p.HSet(ctx, l.problemDetailKey(), idx, data)
		}
		p.PExpire(ctx, l.problemIndexKey(), ttl)
		p.PExpire(ctx, l.problemDetailKey(), ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("recipients: record the problems of %s: %w", l.Key, err)
	}
	return nil
}

// Problems returns up to limit problems from recipient index cursor on, in
// the recipients' order, and the cursor of the next page (0 when there is
// none).
func (s *Store) Problems(ctx context.Context, l List, cursor, limit int) ([]Problem, int, error) {
	idx, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: l.problemIndexKey(), Start: strconv.Itoa(cursor), Stop: "+inf", ByScore: true, Count: int64(limit) + 1,
	}).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("recipients: read the problems of %s: %w", l.Key, err)
	}
	next := 0
	if len(idx) > limit {
		n, err := strconv.Atoi(idx[limit])
		if err != nil {
			return nil, 0, fmt.Errorf("recipients: problems of %s: index %q: %w", l.Key, idx[limit], err)
		}
		next, idx = n, idx[:limit]
	}
	if len(idx) == 0 {
		return nil, next, nil
	}
	vals, err := s.rdb.HMGet(ctx, l.problemDetailKey(), idx...).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("recipients: read the problems of %s: %w", l.Key, err)
	}
	out := make([]Problem, 0, len(vals))
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // removed between the two reads: settled meanwhile
		}
		var p Problem
		if err := json.Unmarshal([]byte(str), &p); err != nil {
			return nil, 0, fmt.Errorf("recipients: problems of %s: %w", l.Key, err)
		}
		out = append(out, p)
	}
	return out, next, nil
}
