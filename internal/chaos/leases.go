//go:build linux

package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
)

// leaseProbe finds the deliveries whose dedup lease a worker holds, to tell
// a kill that interrupted a delivery from one that hit an idle worker.
//
// A dedup record (dedup/dedup.go) keeps a hash of its holder's fencing
// token, workflow ID/run ID/activity ID/attempt, and nothing about the
// worker. Temporal knows which worker started an activity's current
// attempt (PendingActivityInfo.LastWorkerIdentity, "<pid>@<host>@" for
// `onceflow worker`). So, just before a SIGKILL, the probe reads the records
// of the open notifications, keeps the live leases, and asks Temporal for
// each one's pending attempt: a lease whose token hash matches that attempt
// and whose attempt the doomed worker started is that worker's. Once the
// process has died, a lease still held by the same token and not yet run
// out was live at the kill, and its attempt never finished: the kill
// interrupted that delivery.
type leaseProbe struct {
	rdb redis.UniversalClient
	tc  client.Client
	// open lists the notifications not yet closed: key and delivery ID.
	open func() map[string]string
}

// leaseFinder finds the live leases a worker holds and, once it is dead,
// which of them it left behind: the notifications' (leaseProbe) and the
// broadcasts' recipients' (harnessLeases).
type leaseFinder interface {
	held(ctx context.Context, pid int) ([]lease, error)
	interrupted(ctx context.Context, leases []lease) ([]string, error)
}

// harnessLeases is the harness's leaseFinder: the open notifications'
// leases and the open broadcasts' recipients'.
type harnessLeases struct {
	probe *leaseProbe
	bc    *broadcastRun
}

func (l harnessLeases) held(ctx context.Context, pid int) ([]lease, error) {
	held, err := l.probe.held(ctx, pid)
	bheld, berr := l.bc.held(ctx, l.probe, pid)
	return append(held, bheld...), errors.Join(err, berr)
}

func (l harnessLeases) interrupted(ctx context.Context, leases []lease) ([]string, error) {
	return l.probe.interrupted(ctx, leases)
}

// lease is one live lease.
type lease struct {
	key, record, fence string
}

// recordKey is the dedup record of a delivery (dedup/dedup.go).
func recordKey(key, deliveryID string) string {
	return "onceflow:{" + key + "}:" + deliveryID
}

// fence is what a record keeps of a fencing token (dedup/dedup.go).
func fence(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

type recordState struct {
	state, fence string
	until        int64
}

func (p *leaseProbe) read(ctx context.Context, records []string) ([]recordState, int64, error) {
	pipe := p.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(records))
	for i, r := range records {
		cmds[i] = pipe.HMGet(ctx, r, "s", "t", "u")
	}
	now := pipe.Time(ctx)
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, 0, err
	}
	out := make([]recordState, len(records))
	for i, c := range cmds {
		v := c.Val()
		str := func(j int) string {
			if j < len(v) {
				if s, ok := v[j].(string); ok {
					return s
				}
			}
			return ""
		}
		until, _ := strconv.ParseInt(str(2), 10, 64)
		out[i] = recordState{state: str(0), fence: str(1), until: until}
	}
	return out, now.Val().UnixMilli(), nil
}

// held returns the live leases whose current attempt the worker with
// process ID pid started.
func (p *leaseProbe) held(ctx context.Context, pid int) ([]lease, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	open := p.open()
	var keys, records []string
	for k, id := range open {
		keys = append(keys, k)
		records = append(records, recordKey(k, id))
	}
	states, now, err := p.read(ctx, records)
	if err != nil {
		return nil, fmt.Errorf("read leases: %w", err)
	}
	var (
		mu    sync.Mutex
		held  []lease
		errs  []error
		wg    sync.WaitGroup
		slots = make(chan struct{}, 16)
	)
	identity := strconv.Itoa(pid) + "@"
	for i, s := range states {
		if s.state != "l" || s.until <= now {
			continue
		}
		key, record, f := keys[i], records[i], s.fence
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			wfID := "notification/" + key
			d, err := p.tc.DescribeWorkflowExecution(ctx, wfID, "")
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			run := d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
			for _, a := range d.GetPendingActivities() {
				token := fmt.Sprintf("%s/%s/%s/%d", wfID, run, a.GetActivityId(), a.GetAttempt())
				if fence(token) == f && strings.HasPrefix(a.GetLastWorkerIdentity(), identity) {
					mu.Lock()
					held = append(held, lease{key: key, record: record, fence: f})
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return held, fmt.Errorf("describe %d workflows with live leases: %w", len(errs), errs[0])
	}
	return held, nil
}

// interrupted returns the keys of those leases still held by the same
// attempt and live now, after their worker died.
func (p *leaseProbe) interrupted(ctx context.Context, leases []lease) ([]string, error) {
	if len(leases) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	records := make([]string, len(leases))
	for i, l := range leases {
		records[i] = l.record
	}
	states, now, err := p.read(ctx, records)
	if err != nil {
		return nil, err
	}
	var keys []string
	for i, s := range states {
		if s.state == "l" && s.fence == leases[i].fence && s.until > now {
			keys = append(keys, leases[i].key)
		}
	}
	return keys, nil
}

// liveLeases counts the records of the given deliveries whose lease has not
// run out.
func liveLeases(ctx context.Context, rdb redis.UniversalClient, deliveries map[string]string) (int, error) {
	p := &leaseProbe{rdb: rdb}
	var records []string
	for k, id := range deliveries {
		records = append(records, recordKey(k, id))
	}
	states, now, err := p.read(ctx, records)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range states {
		if s.state == "l" && s.until > now {
			n++
		}
	}
	return n, nil
}
