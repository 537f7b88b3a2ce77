// Command onceflow is the binary users deploy: it runs workers and the
// HTTP API, sends, inspects and cancels notifications, and (unless built
// with -tags nodev, as the production image is) the local dev stack.
//
//	onceflow dev [--data-dir .onceflow] [--ui-port 8233] ...
//	onceflow worker [--task-queue onceflow]
//	onceflow api [--addr 127.0.0.1:8080] [--tokens-file tokens]
//	onceflow token --tenant acme
//	onceflow send --key K --channel webhook --to URL --body TEXT [--wait]
//	onceflow send --file notification.json [--wait]
//	onceflow broadcast --file broadcast.json [--wait] [--tenant T]
//	onceflow status K [--json] [--tenant T]
//	onceflow status --broadcast K [--json] [--tenant T]
//	onceflow cancel K [--tenant T]
//	onceflow recover --since TIME [--channel C] [--status failed] [--tenant T]
//	onceflow digest SUBSCRIBER KEY [--json] [--tenant T]
//	onceflow ping [--api URL]
//	onceflow preferences get|set|link --subscriber ID [--tenant T] ...
//	onceflow feed --subscriber ID [--tenant T] [--json] [--read ITEM | --read-all]
//	onceflow subscriber-token --subscriber ID [--tenant T] [--ttl 15m]
//	onceflow revoke --subscriber ID [--tenant T]
//
// The chaos harness is its own command, cmd/onceflow-chaos.
//
// Temporal is reached as the Temporal CLI and SDKs do (TEMPORAL_ADDRESS,
// default 127.0.0.1:7233; TEMPORAL_NAMESPACE, default "default"; TLS and API
// key settings; temporal.toml profiles), Redis at REDIS_URL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	sdklog "go.temporal.io/sdk/log"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/metrics"
	"github.com/onceflow/onceflow/tracing"
)

// Exit codes.
const (
	exitOK      = 0
	exitError   = 1 // the command could not do its work (a server unreachable, say)
	exitInput   = 2 // bad flag, invalid notification, or key conflict: nothing was done
	exitFailure = 3 // with --wait: a delivery ended failed, ambiguous or cancelled
)

const usage = `usage: onceflow <command> [flags]

commands:
  dev      run Temporal, the Web UI, Redis, a worker and the API in one process
  worker   run a worker until SIGINT or SIGTERM
  api      serve the HTTP API until SIGINT or SIGTERM
  send     start a notification and print its workflow ID
  broadcast  start a broadcast (one message, many recipients) from a JSON file
  status   print each delivery's state of a notification
  cancel   cancel a notification that has not been delivered yet
  recover  re-send the deliveries that failed for good since a time, once each
  digest   print a subscriber's digest: its open window and its events
  ping     health check: exit 0 when Temporal and Redis (or --api) answer
  token    print a new API bearer token and its line for the token file
  preferences  get or set a subscriber's opt-outs, or make an unsubscribe link
  feed     print a subscriber's in-app feed, or mark its items read
  subscriber-token  print a short-lived token that reads one subscriber's feed
  revoke   refuse every subscriber token and unsubscribe link issued to a subscriber until now

Run 'onceflow <command> -h' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := newApp(os.Stdout, os.Stderr, envconfig.EnvLookupOS).run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// app is one invocation's surroundings, so tests can run it in-process.
type app struct {
	stdout, stderr io.Writer
	env            envconfig.EnvLookup
	logger         *slog.Logger
	// metrics, when set (serveMetrics), receives the SDK's metrics of
	// the clients dial connects.
	metrics *metrics.Registry
	// tracing is on when the OTEL_* variables say so (tracing.go).
	tracing *tracing.Tracing
	// cfg and rdb are the API configuration and the Redis client, read
	// and opened once, when a command first needs them (config.go).
	cfg *httpapi.Config
	rdb redis.UniversalClient
	// tokensPoll is how often the API looks for a changed token file
	// (auth.go).
	tokensPoll time.Duration
}

func newApp(stdout, stderr io.Writer, env envconfig.EnvLookup) *app {
	return &app{stdout: stdout, stderr: stderr, env: env, logger: slog.New(slog.NewTextHandler(stderr, nil)), tokensPoll: tokensPoll}
}

func (a *app) getenv(name string) string {
	v, _ := a.env.LookupEnv(name)
	return v
}

func (a *app) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usage)
		return exitInput
	}
	env, err := secretFiles(a.env)
	if err != nil {
		return a.exit(inputError{err})
	}
	a.env = env
	stopTracing, err := a.startTracing(ctx)
	if err != nil {
		return a.exit(err)
	}
	defer stopTracing()
	defer a.closeRedis()
	switch cmd, rest := args[0], args[1:]; cmd {
	case "worker":
		err = a.worker(ctx, rest)
	case "api":
		err = a.api(ctx, rest)
	case "dev":
		err = a.dev(ctx, rest)
	case "ping":
		err = a.ping(ctx, rest)
	case "send":
		err = a.send(ctx, rest)
	case "broadcast":
		err = a.broadcast(ctx, rest)
	case "status":
		err = a.status(ctx, rest)
	case "cancel":
		err = a.cancel(ctx, rest)
	case "recover":
		err = a.recoverFailed(ctx, rest) // recover.go
	case "digest":
		err = a.digest(ctx, rest)
	case "token":
		err = a.token(ctx, rest)
	case "preferences":
		err = a.preferences(ctx, rest) // preferences.go
	case "feed":
		err = a.feed(ctx, rest)
	case "subscriber-token":
		err = a.subscriberToken(ctx, rest)
	case "revoke":
		err = a.revoke(ctx, rest) // feed.go
	case "-h", "-help", "--help", "help":
		fmt.Fprint(a.stdout, usage)
		return exitOK
	default:
		err = inputErrorf("unknown command %q; run 'onceflow help'", cmd)
	}
	return a.exit(err)
}

// inputError is a problem with what the user asked for.
type inputError struct{ error }

func inputErrorf(format string, args ...any) error { return inputError{fmt.Errorf(format, args...)} }

// errFailedDeliveries is the outcome of --wait when a delivery did not succeed.
var errFailedDeliveries = errors.New("not every delivery was delivered")

func (a *app) exit(err error) int {
	var (
		ie inputError
		ve *onceflow.ValidationError
		ce *onceflow.ConflictError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errFailedDeliveries):
		fmt.Fprintln(a.stderr, "onceflow:", err)
		return exitFailure
	case errors.As(err, &ie), errors.As(err, &ve), errors.As(err, &ce):
		fmt.Fprintln(a.stderr, "onceflow:", err)
		return exitInput
	}
	fmt.Fprintln(a.stderr, "onceflow:", err)
	return exitError
}

// dial connects to Temporal as the Temporal CLI would, defaulting to
// 127.0.0.1:7233 and namespace "default".
func (a *app) dial(ctx context.Context) (client.Client, string, error) {
	opts, err := envconfig.LoadClientOptions(envconfig.LoadClientOptionsRequest{EnvLookup: a.env})
	if err != nil {
		return nil, "", fmt.Errorf("temporal client settings: %w", err)
	}
	if opts.HostPort == "" {
		opts.HostPort = "127.0.0.1:7233"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	opts.Logger = sdklog.NewStructuredLogger(a.logger)
	if a.metrics != nil {
		opts.MetricsHandler = a.metrics.SDKHandler()
	}
	opts.Interceptors = append(opts.Interceptors, a.tracing.Interceptors()...)
	if err := a.useCodec(&opts); err != nil {
		return nil, "", err
	}
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, "", fmt.Errorf("connect to Temporal at %s (TEMPORAL_ADDRESS): %w", opts.HostPort, err)
	}
	return tc, opts.Namespace, nil
}

// parse parses a command's flags. A bad flag is a one-line inputError;
// -h prints the command's flags.
func (a *app) parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(a.stdout)
		fmt.Fprintf(a.stdout, "usage of onceflow %s:\n", fs.Name())
		fs.PrintDefaults()
		return err
	case err != nil:
		return inputError{err}
	}
	return nil
}
