package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow/providers"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/providers/webhook"
)

// Retry defaults of a Dispatcher: 30 POSTs over about two hours, so that a
// receiver down for a deploy or an afternoon still gets every event, and
// one gone for good does not keep events forever. A retry never comes
// sooner than a POST's timeout after the last one (retryDue). FirstRetry
// is also how often a dispatcher looks for due retries.
const (
	DefaultFirstRetry  = time.Second
	DefaultMaxRetry    = 5 * time.Minute
	DefaultMaxAttempts = 30
)

// postTimeout bounds one POST: an events receiver that hangs must not
// hold the dispatcher.
const postTimeout = 10 * time.Second

// Dispatcher POSTs the outbox's events to the events URL, signed as
// webhooks are (Standard Webhooks, with ONCEFLOW_WEBHOOK_SECRET), retrying
// each with exponential backoff up to MaxAttempts. Every worker process
// runs one; they share the outbox through a consumer group, and an event
// whose POST failed, or whose dispatcher died, is taken again by whichever
// dispatcher sees it first once its backoff has passed.
type Dispatcher struct {
	rdb    redis.UniversalClient
	url    string
	origin string
	keys   [][]byte
	client *http.Client
	// Consumer names this dispatcher in the consumer group.
	Consumer string
	// FirstRetry, MaxRetry and MaxAttempts bound the retries of one event;
	// zero means the defaults.
	FirstRetry  time.Duration
	MaxRetry    time.Duration
	MaxAttempts int
	Logger      *slog.Logger
}

// NewDispatcher returns a dispatcher of rdb's outbox to eventsURL, signed
// with secret (webhook.SecretEnv's format). eventsURL is dialled only when
// its address passes guard, as webhook destinations are.
func NewDispatcher(rdb redis.UniversalClient, eventsURL, secret string, guard egress.Guard) (*Dispatcher, error) {
	if _, err := ParseURL(eventsURL); err != nil {
		return nil, err
	}
	keys, err := webhook.ParseSecrets(secret)
	if err != nil {
		return nil, fmt.Errorf("events are signed with the webhook secret: %w", err)
	}
	host, _ := os.Hostname()
	return &Dispatcher{
		rdb: rdb, url: eventsURL, origin: Origin(eventsURL), keys: keys,
		client:   providers.NewGuardedHTTPClient(guard),
		Consumer: fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano()),
		Logger:   slog.Default(),
	}, nil
}

// Run dispatches until ctx is done. Redis errors are logged and retried.
func (d *Dispatcher) Run(ctx context.Context) {
	if d.FirstRetry <= 0 {
		d.FirstRetry = DefaultFirstRetry
	}
	if d.MaxRetry <= 0 {
		d.MaxRetry = DefaultMaxRetry
	}
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = DefaultMaxAttempts
	}
	grouped := false
	for ctx.Err() == nil {
		err := error(nil)
		if !grouped {
			err = d.rdb.XGroupCreateMkStream(ctx, streamKey, group, "0").Err()
			if err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP") {
				err = nil
			}
			grouped = err == nil
		}
		if err == nil {
			err = d.retryDue(ctx)
		}
		if err == nil {
			err = d.readNew(ctx)
		}
		if err != nil && ctx.Err() == nil {
			d.Logger.Warn("Events: the outbox in Redis could not be read; trying again", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(d.FirstRetry):
			}
		}
	}
	d.leave()
}

// leave removes this dispatcher from the consumer group when it holds no
// event, so that restarts do not pile up names; one that holds some stays,
// since removing it would drop them, and another dispatcher takes them.
func (d *Dispatcher) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	held, err := d.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: streamKey, Group: group, Consumer: d.Consumer, Start: "-", End: "+", Count: 1,
	}).Result()
	if err == nil && len(held) == 0 {
		_ = d.rdb.XGroupDelConsumer(ctx, streamKey, group, d.Consumer).Err()
	}
}

// readNew POSTs events no dispatcher has taken yet, waiting up to
// FirstRetry for some, so that due retries are looked at as often.
func (d *Dispatcher) readNew(ctx context.Context) error {
	streams, err := d.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: group, Consumer: d.Consumer, Streams: []string{streamKey, ">"}, Count: 16, Block: d.FirstRetry,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range streams {
		for _, m := range s.Messages {
			d.post(ctx, m, 1)
		}
	}
	return nil
}

// retryDue takes again the events whose last POST failed (or whose
// dispatcher died) once their backoff has passed.
func (d *Dispatcher) retryDue(ctx context.Context) error {
	pending, err := d.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: streamKey, Group: group, Idle: d.FirstRetry, Start: "-", End: "+", Count: 32,
	}).Result()
	if err != nil {
		return err
	}
	for _, p := range pending {
		// Never less than a POST may take, so that an event another
		// dispatcher is still posting is not taken from it.
		wait := max(d.backoff(p.RetryCount), postTimeout+time.Second)
		if p.Idle < wait {
			continue
		}
		// XCLAIM with the backoff as minimum idle time: of several
		// dispatchers, one takes it.
		msgs, err := d.rdb.XClaim(ctx, &redis.XClaimArgs{
			Stream: streamKey, Group: group, Consumer: d.Consumer, MinIdle: wait, Messages: []string{p.ID},
		}).Result()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			d.post(ctx, m, int(p.RetryCount)+1)
		}
	}
	return nil
}

// backoff is the wait after the nth failed POST.
func (d *Dispatcher) backoff(n int64) time.Duration {
	wait := d.FirstRetry
	for i := int64(1); i < n && wait < d.MaxRetry; i++ {
		wait *= 2
	}
	return min(wait, d.MaxRetry)
}

// post POSTs one event, its attempt-th time, and removes it from the
// outbox when the receiver took it or when it ran out of attempts.
func (d *Dispatcher) post(ctx context.Context, m redis.XMessage, attempt int) {
	id, _ := m.Values["id"].(string)
	body, _ := m.Values["event"].(string)
	err := d.send(ctx, id, []byte(body))
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return
	case attempt >= d.MaxAttempts:
		d.Logger.Error("Events: giving up on an event", "event_id", id, "events_url", d.origin, "attempts", attempt, "error", err)
	default:
		d.Logger.Warn("Events: POST failed; it will be retried", "event_id", id, "events_url", d.origin, "attempt", attempt, "error", err)
		return
	}
	if err := d.done(ctx, m.ID); err != nil {
		d.Logger.Warn("Events: could not remove a dispatched event from the outbox; it may be sent again", "event_id", id, "error", err)
	}
}

func (d *Dispatcher) done(ctx context.Context, id string) error {
	_, err := d.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, streamKey, group, id)
		p.XDel(ctx, streamKey, id)
		return nil
	})
	return err
}

// send POSTs body signed under webhook-id id; a 2xx answer is success.
func (d *Dispatcher) send(ctx context.Context, id string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, postTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Onceflow")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", webhook.SignAll(d.keys, id, now, body))
	resp, err := d.client.Do(req)
	if err != nil {
		// Without the URL, whose path may hold a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("events receiver answered HTTP %d", resp.StatusCode)
	}
	return nil
}
