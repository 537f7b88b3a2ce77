package envvar

// Processes that read variables, as the reference names them.
const (
	Worker = "worker"
	API    = "api"
	Dev    = "dev"
	// CLI is the commands that reach Redis besides the servers: send,
	// broadcast, feed, preferences and ping.
	CLI = "send, broadcast, feed, preferences, revoke, ping"
	// Every is every command of the onceflow binary.
	Every = "every command"
)

// Redis: how every process reaches it (redisconn.Load).
var (
	RedisURL = Var{Name: "REDIS_URL", Default: "redis://127.0.0.1:6379/0", ReadBy: []string{Worker, API, Dev, CLI},
		Meaning: "one server (`redis://`, `rediss://` for TLS) or a Redis Cluster (`redis+cluster://[user:password@]host1:port1,host2:port2/`, " +
			"`rediss+cluster://` for TLS; [scaling.md](scaling.md)); with `maxmemory-policy noeviction` (the worker refuses any other, on every primary) " +
			"and AOF or a replica (it warns otherwise). Unset, the worker and `ping` use the default, while `api` and `send` run without the " +
			"dedup ledger (a key reused with another payload is then refused later, by the workers' claims), `api` serves no broadcasts, " +
			"preferences or in-app feed, and `broadcast`, `feed` and `preferences` refuse to run"}
	RedisCAFile = Var{Name: "ONCEFLOW_REDIS_CA_FILE", ReadBy: []string{Worker, API, Dev, CLI},
		Meaning: "a PEM file of the CAs to trust for a `rediss://` or `rediss+cluster://` `REDIS_URL` (a private CA); set, only they " +
			"are trusted (the system's roots otherwise); refused with a URL without TLS"}
	RedisCertFile = Var{Name: "ONCEFLOW_REDIS_CERT_FILE", ReadBy: []string{Worker, API, Dev, CLI},
		Meaning: "a client certificate (PEM), for a Redis with `tls-auth-clients yes` (redis-server's default with TLS); " +
			"with `ONCEFLOW_REDIS_KEY_FILE`: both or neither; refused with a URL without TLS"}
	RedisKeyFile = Var{Name: "ONCEFLOW_REDIS_KEY_FILE", ReadBy: []string{Worker, API, Dev, CLI},
		Meaning: "the key (PEM) of `ONCEFLOW_REDIS_CERT_FILE`'s certificate"}
	RedisWaitReplicas = Var{Name: "ONCEFLOW_REDIS_WAIT_REPLICAS", Default: "0", ReadBy: []string{Worker, API, Dev, CLI},
		Meaning: "a claim, and an in-app delivery's write, counts only once this many replicas have it " +
			"(Redis `WAIT`; on a cluster, replicas of the record's primary)"}
)

// The worker's and the API's common settings.
var (
	TaskQueue = Var{Name: "ONCEFLOW_TASK_QUEUE", Default: "onceflow", ReadBy: []string{Worker, API, Dev, "send", "broadcast", "recover"},
		Meaning: "the task queue the workers poll and notifications are started on; or `--task-queue`"}
	DedupWindow = Var{Name: "ONCEFLOW_DEDUP_WINDOW", Default: "720h", ReadBy: []string{Worker, API, Dev, "send", "broadcast"},
		Meaning: "how long dedup records live; must outlive the namespace's retention plus `ONCEFLOW_GIVE_UP_AFTER` " +
			"(the worker refuses to start otherwise); broadcasts' recipient lists are kept as long past their `send_at`"}
	FeedTTL = Var{Name: "ONCEFLOW_FEED_TTL", Default: "720h", ReadBy: []string{Worker, API, Dev, "feed"},
		Meaning: "how long in-app feed items are kept after they were written"}
	CriticalCategories = Var{Name: "ONCEFLOW_CRITICAL_CATEGORIES", ReadBy: []string{Worker, API, Dev, "send", "broadcast", "preferences"},
		Meaning: "categories delivered whatever the subscriber's preferences say, comma-separated, e.g. `security,billing`; " +
			"the API refuses opt-outs of them"}
	UnsubscribeSecret = Var{Name: "ONCEFLOW_UNSUBSCRIBE_SECRET", ReadBy: []string{Worker, API, Dev, "send", "broadcast", "preferences"},
		Meaning: "at least 32 bytes (`openssl rand -hex 32`), the same for workers and API: signs and verifies unsubscribe links; " +
			"several, comma-separated, while rotating (the first signs, each verifies: links already in mailboxes keep working " +
			"until their secret is removed, which revokes them, [operations.md](operations.md#revoking-subscriber-tokens-and-unsubscribe-links)); " +
			"none: no unsubscribe links"}
	PublicURL = Var{Name: "ONCEFLOW_PUBLIC_URL", ReadBy: []string{Worker, API, Dev, "send", "broadcast", "preferences"},
		Meaning: "the API's base URL as recipients reach it, `https://` (http only on loopback); unsubscribe links and e-mails' " +
			"`List-Unsubscribe` start with it; none: no links made"}
)

// The worker's own settings (worker.LoadConfig).
var (
	AttemptTimeout = Var{Name: "ONCEFLOW_ATTEMPT_TIMEOUT", Default: "30s", ReadBy: []string{Worker, Dev},
		Meaning: "one send attempt; the dedup lease lasts 5s longer"}
	GiveUpAfter = Var{Name: "ONCEFLOW_GIVE_UP_AFTER", Default: "24h", ReadBy: []string{Worker, Dev},
		Meaning: "all attempts of one delivery"}
	RateLimits = Var{Name: "ONCEFLOW_RATE_LIMITS", ReadBy: []string{Worker, Dev},
		Meaning: "e.g. `sms=50,email=20`: sends per second per channel, across workers; none: no limit"}
	WorkflowCache = Var{Name: "ONCEFLOW_WORKFLOW_CACHE", Default: "1000", ReadBy: []string{Worker, Dev},
		Meaning: "workflows a worker keeps in memory between tasks ([benchmarks.md](benchmarks.md))"}
	WebhookSecret = Var{Name: "ONCEFLOW_WEBHOOK_SECRET", ReadBy: []string{Worker, Dev},
		Meaning: "required by `worker` (`onceflow dev` makes one in its data directory): `whsec_` + base64 of at least 16 random bytes; " +
			"several, comma-separated, while rotating (each signs)"}
	EgressAllow = Var{Name: "ONCEFLOW_EGRESS_ALLOW", ReadBy: []string{Worker, Dev},
		Meaning: "networks (CIDRs, comma-separated) that webhook and Slack incoming-webhook URLs may reach although the egress guard " +
			"refuses them: loopback, private, link-local, metadata, ... ([channels.md](channels.md)); none by default, `onceflow dev` allows loopback"}
	TemplatesDir = Var{Name: "ONCEFLOW_TEMPLATES_DIR", ReadBy: []string{Worker, Dev},
		Meaning: "notification templates ([channels.md](channels.md)); none by default"}
	EventsURL = Var{Name: "ONCEFLOW_EVENTS_URL", ReadBy: []string{Worker, Dev},
		Meaning: "where signed operational events are POSTed (`delivery.failed`, `delivery.ambiguous`, `endpoint.failing`); " +
			"passes the egress guard like webhook URLs; none: no events"}
	EndpointFailingAfter = Var{Name: "ONCEFLOW_ENDPOINT_FAILING_AFTER", Default: "10m", ReadBy: []string{Worker, Dev},
		Meaning: "how long a webhook destination fails every attempt before `endpoint.failing` is sent, once per failing streak"}
)

// The channels' providers (worker.LoadConfig through each provider's
// package). Several SMTP relays and Twilio accounts are numbered.
var (
	SMTP = Var{Name: "ONCEFLOW_SMTP_ADDR", ReadBy: []string{Worker, Dev},
		Meaning: "the SMTP relay (`host:port`), with `ONCEFLOW_SMTP_FROM`, `_USERNAME`, `_PASSWORD`, `_TLS` (`starttls`, `tls` or `none`); " +
			"`ONCEFLOW_SMTP_2_…` and `ONCEFLOW_SMTP_3_…` are fallback relays; unset: email off"}
	Twilio = Var{Name: "ONCEFLOW_TWILIO_ACCOUNT_SID", ReadBy: []string{Worker, Dev},
		Meaning: "the Twilio account, with `ONCEFLOW_TWILIO_AUTH_TOKEN`, `_FROM`, `_BASE_URL`; `ONCEFLOW_TWILIO_2_…`, " +
			"`ONCEFLOW_TWILIO_3_…` are fallback accounts; unset: SMS off"}
	FCM = Var{Name: "ONCEFLOW_FCM_CREDENTIALS_FILE", ReadBy: []string{Worker, Dev},
		Meaning: "a Firebase service-account key, with `ONCEFLOW_FCM_PROJECT_ID` and `ONCEFLOW_FCM_ENDPOINT`; unset: push off"}
	Slack = Var{Name: "ONCEFLOW_SLACK_BOT_TOKEN", ReadBy: []string{Worker, Dev},
		Meaning: "`chat.postMessage` with this token, or with `ONCEFLOW_SLACK_ENABLED` incoming webhooks only; " +
			"`ONCEFLOW_SLACK_API_URL` for another endpoint; unset: chat off"}
)

// The API's own settings (httpapi.LoadConfig).
var (
	APIAddr = Var{Name: "ONCEFLOW_API_ADDR", Default: "127.0.0.1:8080", ReadBy: []string{API},
		Meaning: "the API's listen address; or `--addr` (`onceflow dev`: `--api-addr`)"}
	APITokensFile = Var{Name: "ONCEFLOW_API_TOKENS_FILE", ReadBy: []string{API, Dev},
		Meaning: "or `--tokens-file`; `<tenant> sha256:<hex>` per line, re-read on SIGHUP and within 10s of a change to its content " +
			"(removing a line revokes its token); unset: no authentication, " +
			"and the API listens on loopback only"}
	MaxSendAhead = Var{Name: "ONCEFLOW_MAX_SEND_AHEAD", Default: "8760h", ReadBy: []string{API, "send"},
		Meaning: "how far ahead `send_at` may be; the Go client takes `starter.WithMaxSendAhead`"}
	SubscriberTokenSecret = Var{Name: "ONCEFLOW_SUBSCRIBER_TOKEN_SECRET", ReadBy: []string{API, "subscriber-token"},
		Meaning: "at least 32 bytes, e.g. `openssl rand -hex 32`; signs the browsers' subscriber tokens for the in-app feed; " +
			"several, comma-separated, while rotating (the first signs, each verifies: removing one revokes every token it signed, " +
			"[operations.md](operations.md#revoking-subscriber-tokens-and-unsubscribe-links)); unset: no subscriber tokens"}
	FeedOrigins = Var{Name: "ONCEFLOW_FEED_ORIGINS", ReadBy: []string{API, Dev},
		Meaning: "page origins allowed to call the feed routes from a browser, comma-separated, e.g. `https://app.example.com`; none by default"}
	CodecOrigins = Var{Name: "ONCEFLOW_CODEC_ORIGINS", ReadBy: []string{API},
		Meaning: "Web UI origins allowed to call `/codec` from a browser, e.g. `http://localhost:8233`; none by default"}
)

// The limits of the API's routes that need no app token (httpapi.LoadLimits):
// `<requests>/<period>[,burst=<requests>]` or `off`, kept in Redis.
var (
	FeedLimitPerAddress = Var{Name: "ONCEFLOW_FEED_LIMIT_PER_ADDRESS", Default: "1200/1m", ReadBy: []string{API, Dev},
		Meaning: "requests to the feed routes with a subscriber token (page, read, read-all, stream) per client address " +
			"(an IPv6 client's /64), e.g. `10/s,burst=100`: `n/period` admits n at once, then n per period; " +
			"`off`: no limit; over it: 429 with `Retry-After` ([api.md](api.md#limits-of-the-public-routes))"}
	FeedLimitPerSubscriber = Var{Name: "ONCEFLOW_FEED_LIMIT_PER_SUBSCRIBER", Default: "120/1m", ReadBy: []string{API, Dev},
		Meaning: "the same requests per subscriber (in its tenant), whatever their addresses"}
	UnsubscribeLimitPerAddress = Var{Name: "ONCEFLOW_UNSUBSCRIBE_LIMIT_PER_ADDRESS", Default: "600/1m", ReadBy: []string{API, Dev},
		Meaning: "unsubscribe page views, and apart from them one-click unsubscribes, per client address"}
	UnsubscribeLimitPerSubscriber = Var{Name: "ONCEFLOW_UNSUBSCRIBE_LIMIT_PER_SUBSCRIBER", Default: "30/1m", ReadBy: []string{API, Dev},
		Meaning: "unsubscribe page views, and apart from them one-click unsubscribes, per subscriber (in its tenant)"}
	TrustedProxies = Var{Name: "ONCEFLOW_TRUSTED_PROXIES", ReadBy: []string{API, Dev},
		Meaning: "networks (CIDRs, comma-separated) of the reverse proxies in front of the API; a request from one of them is " +
			"limited by the client address in `ONCEFLOW_PROXY_HEADER` (the nearest address there that is not a trusted proxy's); " +
			"none by default: the connection's address, since any client can send that header"}
	ProxyHeader = Var{Name: "ONCEFLOW_PROXY_HEADER", Default: "X-Forwarded-For", ReadBy: []string{API, Dev},
		Meaning: "`X-Forwarded-For` or `Forwarded` (RFC 7239): the one header the trusted proxies add the client's address to"}
)

// Settings of every command.
var (
	Temporal = Var{Name: "TEMPORAL_ADDRESS", Default: "127.0.0.1:7233", ReadBy: []string{Every},
		Meaning: "with `TEMPORAL_NAMESPACE` (default `default`), `TEMPORAL_TLS_*`, `TEMPORAL_API_KEY`, `TEMPORAL_PROFILE`: " +
			"read as the Temporal CLI reads them, `temporal.toml` profiles included"}
	CodecKeys = Var{Name: "ONCEFLOW_CODEC_KEYS", ReadBy: []string{Every},
		Meaning: "`<key id>:<base64 of 32 bytes>`, comma-separated; the first encrypts, all decrypt; unset: payloads in clear"}
	MetricsAddr = Var{Name: "ONCEFLOW_METRICS_ADDR", ReadBy: []string{Worker, API},
		Meaning: "address to serve Prometheus `/metrics` on, e.g. `:9090`; metrics carry no keys, recipients or tokens, so a public " +
			"address is allowed (`onceflow dev` serves `/metrics` on its API address); [metrics.md](metrics.md); unset: no metrics served"}
	SecretFiles = Var{Name: "<secret>_FILE", ReadBy: []string{Every},
		Meaning: "a file holding a secret variable's value, for `ONCEFLOW_CODEC_KEYS`, `ONCEFLOW_WEBHOOK_SECRET`, `REDIS_URL`, " +
			"`ONCEFLOW_TWILIO_AUTH_TOKEN`, `ONCEFLOW_SMTP_PASSWORD`, `ONCEFLOW_SLACK_BOT_TOKEN`, `ONCEFLOW_UNSUBSCRIBE_SECRET`, " +
			"`ONCEFLOW_SUBSCRIBER_TOKEN_SECRET` (compose and Kubernetes secrets)"}
	Tracing = Var{Name: "OTEL_TRACES_EXPORTER", ReadBy: []string{Every},
		Meaning: "with `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`, " +
			"`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, `OTEL_SDK_DISABLED`: `otlp` or an endpoint turns traces on; `http/protobuf` (default) " +
			"or `grpc`; the OpenTelemetry SDK reads the others (`OTEL_SERVICE_NAME`, default `onceflow`, `OTEL_RESOURCE_ATTRIBUTES`, " +
			"`OTEL_TRACES_SAMPLER`, default `parentbased_always_on`, ...) as the OpenTelemetry specification defines them; unset: tracing off"}
	DevDB = Var{Name: "ONCEFLOW_DEV_DB", ReadBy: []string{Dev},
		Meaning: "or `--db`; `postgres://user:password@host:port/database` for the embedded Temporal server; unset: SQLite in `--data-dir`"}
	RecordHistories = Var{Name: "ONCEFLOW_RECORD_HISTORIES", ReadBy: []string{"tests"},
		Meaning: "a directory to record workflow histories into, for the replay tests; unset: off"}
)

// Sections are the reference's sections, in order, each with its
// variables.
var Sections = []struct {
	Title string
	Vars  []Var
}{
	{"Temporal, payloads, metrics and tracing", []Var{Temporal, CodecKeys, SecretFiles, MetricsAddr, Tracing}},
	{"Redis", []Var{RedisURL, RedisCAFile, RedisCertFile, RedisKeyFile, RedisWaitReplicas}},
	{"Delivery", []Var{TaskQueue, DedupWindow, AttemptTimeout, GiveUpAfter, RateLimits, WorkflowCache, WebhookSecret, EgressAllow, TemplatesDir, EventsURL, EndpointFailingAfter}},
	{"Channels", []Var{SMTP, Twilio, FCM, Slack}},
	{"Products", []Var{FeedTTL, CriticalCategories, UnsubscribeSecret, PublicURL}},
	{"The HTTP API", []Var{APIAddr, APITokensFile, MaxSendAhead, SubscriberTokenSecret, FeedOrigins, CodecOrigins}},
	{"Limits of the public routes", []Var{FeedLimitPerAddress, FeedLimitPerSubscriber, UnsubscribeLimitPerAddress, UnsubscribeLimitPerSubscriber, TrustedProxies, ProxyHeader}},
	{"Development and tests", []Var{DevDB, RecordHistories}},
}
