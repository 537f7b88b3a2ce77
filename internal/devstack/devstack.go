// Package devstack runs all of Onceflow in one process for local use, in
// this order: an embedded Temporal server persisting to SQLite under the
// data directory (or to PostgreSQL, with several history shards), Redis, the workers, the HTTP API (with the codec endpoint
// when payloads are encrypted) and the Temporal Web UI. Stop stops them in
// reverse order.
package devstack

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/broadcast/recipients"
	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/dedup"
	"github.com/onceflow/onceflow/digest"
	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/redisproc"
	"github.com/onceflow/onceflow/metrics"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/providers/egress"
	"github.com/onceflow/onceflow/revocation"
	"github.com/onceflow/onceflow/starter"
	"github.com/onceflow/onceflow/tracing"
	"github.com/onceflow/onceflow/worker"
	"github.com/onceflow/onceflow/workflows"
)

// Namespace is the dev server's namespace.
const Namespace = "default"

// Config says where the dev stack listens and keeps its data.
type Config struct {
	// DataDir holds the Temporal database, Redis's append-only file, the
	// generated webhook secret and the server's log.
	DataDir string
	// DB, when set, is a postgres:// URL: the Temporal server keeps its
	// data there (and visibility in the database of the same name with
	// VisibilitySuffix) instead of in SQLite under DataDir.
	DB string
	// HistoryShards is the Temporal cluster's number of history shards,
	// fixed when its database is created; 0 means DefaultShardsSQLite or
	// DefaultShardsPostgres.
	HistoryShards int32
	TemporalPort  int
	UIPort        int // 0: no Web UI
	APIAddr       string
	// Workers is how many workers run in the process; 0 runs none, for
	// workers started separately (onceflow worker).
	Workers int
	// RedisURL, when set, is used instead of starting a Redis.
	RedisURL string
	// Worker is the workers' configuration; its RedisURL and, when empty,
	// WebhookSecret are filled in by Start.
	Worker worker.Config
	Logger *slog.Logger
	// CodecKeys, when set, encrypt every payload the stack's clients and
	// workers write, and the API serves /codec/ for the Web UI.
	CodecKeys *codec.Keys
	// APITokens, when set, are the bearer tokens the API and its codec
	// endpoint require; without them the API serves the single tenant to
	// whoever reaches it.
	APITokens *httpapi.Tokens
	// FeedOrigins are the origins whose pages may read in-app feeds from a
	// browser (httpapi.EnvFeedOrigins); none when empty.
	FeedOrigins []string
	// Limits bound the API's public routes (httpapi.LoadLimits); the zero
	// Limits limit nothing.
	Limits httpapi.Limits
	// Tracing, when set, traces the API's requests, the stack's client
	// and its workers (nil: off).
	Tracing *tracing.Tracing
}

// Redis kinds Start may choose.
const (
	RedisExternal = "external"
	RedisServer   = "redis-server"
	RedisInMemory = "in-memory"
)

// Stack is a running dev stack.
type Stack struct {
	TemporalAddress string
	// TemporalStore says where the Temporal server keeps its data, without
	// credentials; HistoryShards is its number of history shards.
	TemporalStore string
	HistoryShards int32
	UIURL         string
	APIURL        string
	RedisURL      string
	// RedisKind is RedisExternal, RedisServer or RedisInMemory.
	RedisKind string
	// Client is connected to the embedded server's namespace.
	Client client.Client

	// codec serves the remote codec protocol when payloads are encrypted.
	codec http.Handler
	// metrics are the stack's, served on the API's address.
	metrics *metrics.Registry
	tracing *tracing.Tracing
	stops   []func()
}

// Start starts the stack. On error, what had started is stopped again.
func Start(ctx context.Context, cfg Config) (s *Stack, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("--workers must not be negative, got %d", cfg.Workers)
	}
	st, shards, err := temporalStore(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	s = &Stack{TemporalAddress: net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.TemporalPort)), TemporalStore: st.where, HistoryShards: shards, metrics: metrics.New(), tracing: cfg.Tracing}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	log := cfg.Logger

	srv, err := temporalServer(cfg.TemporalPort, st, shards, filepath.Join(cfg.DataDir, "temporal.log"),
		Namespace, workflows.SearchAttributeTypes, devDynamicConfig())
	if err != nil {
		return s, err
	}
	if err := srv.Start(); err != nil {
		return s, fmt.Errorf("start Temporal server on %s: %w", s.TemporalAddress, err)
	}
	s.stops = append(s.stops, func() { _ = srv.Stop() })
	s.Client, err = client.DialContext(ctx, withCodec(client.Options{
		HostPort: s.TemporalAddress, Namespace: Namespace,
		Logger:         sdklog.NewStructuredLogger(log.With("component", "temporal-client")),
		MetricsHandler: s.metrics.SDKHandler(),
		Interceptors:   cfg.Tracing.Interceptors(),
	}, cfg.CodecKeys))
	if err != nil {
		return s, fmt.Errorf("connect to the embedded Temporal server: %w", err)
	}
	s.stops = append(s.stops, s.Client.Close)

	if err := s.startRedis(cfg); err != nil {
		return s, err
	}

	wcfg := cfg.Worker
	wcfg.RedisURL = s.RedisURL
	// The demo receiver, and whatever a developer runs beside the stack,
	// listens on loopback.
	wcfg.EgressAllow = append(egress.Loopback(), wcfg.EgressAllow...)
	if wcfg.WebhookSecret == "" {
		if wcfg.WebhookSecret, err = devWebhookSecret(cfg.DataDir); err != nil {
			return s, err
		}
	}
	if err := devPreferences(&wcfg.Preferences, cfg.DataDir, cfg.APIAddr); err != nil { // preferences.go
		return s, err
	}
	if err := worker.RegisterSearchAttributes(ctx, s.Client, Namespace); err != nil {
		return s, err
	}
	for i := range cfg.Workers {
		acts, rdb, err := worker.Activities(wcfg)
		if err != nil {
			return s, err
		}
		w := worker.New(s.Client, wcfg.TaskQueue, wcfg.Policy, acts)
		if err := w.Start(); err != nil {
			_ = rdb.Close()
			return s, fmt.Errorf("start worker %d: %w", i+1, err)
		}
		s.stops = append(s.stops, func() { w.Stop(); _ = rdb.Close() })
		if i == 0 {
			stopEvents, err := worker.StartEvents(context.Background(), wcfg, rdb, log)
			if err != nil {
				return s, err
			}
			s.stops = append(s.stops, stopEvents)
		}
	}

	if cfg.APIAddr != "" {
		s.codec = codecHandler(cfg.CodecKeys, cfg.UIPort, cfg.APITokens)
		if err := s.startAPI(cfg, wcfg, log); err != nil {
			return s, err
		}
	}
	if cfg.UIPort != 0 {
		if err := s.startUI(cfg.UIPort); err != nil {
			return s, err
		}
	}
	return s, nil
}

// temporalStore reads where the Temporal server keeps its data, and with
// how many history shards, before anything starts.
func temporalStore(cfg Config) (store, int32, error) {
	if cfg.HistoryShards < 0 {
		return store{}, 0, fmt.Errorf("--history-shards must be positive, got %d", cfg.HistoryShards)
	}
	if cfg.DB == "" {
		return sqliteStore(filepath.Join(cfg.DataDir, "temporal.db")), cmp.Or(cfg.HistoryShards, DefaultShardsSQLite), nil
	}
	st, err := postgresStore(cfg.DB)
	return st, cmp.Or(cfg.HistoryShards, DefaultShardsPostgres), err
}

// Stop stops everything Start started, in reverse order.
func (s *Stack) Stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
}

func (s *Stack) startUI(port int) error {
	ui := uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                "127.0.0.1",
		Port:                port,
		TemporalGRPCAddress: s.TemporalAddress,
		EnableUI:            true,
		DefaultNamespace:    Namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true,
		Codec:               s.uiCodec(),
	}))
	failed := make(chan error, 1)
	go func() { failed <- ui.Start() }()
	s.UIURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	// Start blocks while it serves; wait until it answers or fails.
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-failed:
			return fmt.Errorf("start the Web UI on port %d: %w", port, err)
		default:
		}
		if resp, err := http.Get(s.UIURL + "/"); err == nil {
			_ = resp.Body.Close()
			s.stops = append(s.stops, ui.Stop)
			return nil
		}
		if time.Now().After(deadline) {
			ui.Stop()
			return fmt.Errorf("the Web UI on %s did not answer within 10s", s.UIURL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Stack) startRedis(cfg Config) error {
	switch {
	case cfg.RedisURL != "":
		s.RedisURL, s.RedisKind = cfg.RedisURL, RedisExternal
	case redisproc.Available():
		r, err := redisproc.Start(filepath.Join(cfg.DataDir, "redis"), 0)
		if err != nil {
			return err
		}
		s.stops = append(s.stops, r.Stop)
		s.RedisURL, s.RedisKind = r.URL(), RedisServer
	default:
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("start the in-memory Redis: %w", err)
		}
		s.stops = append(s.stops, m.Close)
		s.RedisURL, s.RedisKind = "redis://"+m.Addr()+"/0", RedisInMemory
		cfg.Logger.Warn("redis-server is not installed: using an in-memory Redis. Dedup records will NOT survive a restart of onceflow dev; install redis-server or pass --redis-url for that.")
	}
	return nil
}

func (s *Stack) startAPI(cfg Config, wcfg worker.Config, log *slog.Logger) error {
	taskQueue, secret, prefs := wcfg.TaskQueue, wcfg.WebhookSecret, wcfg.Preferences
	addr, tokens := cfg.APIAddr, cfg.APITokens
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--api-addr %s: %w", addr, err)
	}
	// The API refuses a key reused with another payload from the dedup
	// ledger, even once Temporal has deleted the earlier notification.
	rdb, err := wcfg.Config.Open(true)
	if err != nil {
		_ = l.Close()
		return err
	}
	s.stops = append(s.stops, func() { _ = rdb.Close() })
	// The in-app feed, with subscriber tokens signed by a key derived
	// from the dev stack's webhook secret; none if it is too short.
	signer, _ := feed.NewSigner(secret)
	mux := http.NewServeMux()
	notifications := starter.New(s.Client, taskQueue, starter.WithLedger(dedup.New(rdb, 0)), starter.WithLogger(log))
	mux.Handle("/", s.metrics.Instrument(httpapi.Handler(notifications,
		log, httpapi.WithTokens(tokens), httpapi.WithBroadcasts(broadcast.NewClient(notifications, recipients.New(rdb), dedup.DefaultWindow)), httpapi.WithDigests(digest.NewClient(s.Client)), httpapi.WithPreferences(preferences.NewService(preferences.New(rdb, prefs.Critical), prefs.Links())), httpapi.WithRevocation(revocation.New(rdb)), httpapi.WithFeed(feed.NewService(feed.New(rdb, 0, 0)), signer, cfg.FeedOrigins), httpapi.WithLimits(rdb, cfg.Limits))))
	// Metrics carry no personal data; like the API, the address is
	// loopback unless --api-addr says otherwise.
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.Handle("POST "+DemoWebhookPath, demoReceiver(secret, log))
	if s.codec != nil {
		mux.Handle("/codec/", s.codec)
	}
	srv := httpapi.NewServer(s.tracing.Handler(mux), httpapi.DefaultTimeouts())
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("API stopped", "error", err)
		}
	}()
	s.APIURL = "http://" + l.Addr().String()
	s.stops = append(s.stops, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return nil
}

// devWebhookSecret returns the signing secret kept in the data directory,
// creating a random one the first time, so that receivers set up against a
// dev stack keep verifying signatures across restarts.
func devWebhookSecret(dir string) (string, error) {
	path := filepath.Join(dir, "webhook-secret")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return secret, nil
}
