package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/httpapi"
)

// makeTokensHelp says how to create a token file, for an API that would
// otherwise serve a public address without one.
const makeTokensHelp = `create a token file and set ` + httpapi.EnvTokensFile + ` (or --tokens-file) to it:
  onceflow token --tenant acme    # prints a token for the caller and the line for the file
or by hand:
  token=$(openssl rand -hex 32)
  printf 'acme sha256:%s\n' "$(printf %s "$token" | sha256sum | cut -d' ' -f1)" >> tokens
then give $token to the caller, who sends it as "Authorization: Bearer <token>".`

// tokensFlag adds --tokens-file to fs, defaulting to ONCEFLOW_API_TOKENS_FILE.
func (a *app) tokensFlag(fs *flag.FlagSet) *string {
	return fs.String("tokens-file", a.getenv(httpapi.EnvTokensFile), "file of API bearer tokens' hashes, one '<tenant> sha256:<hex>' per line; re-read on SIGHUP and when it changes ("+httpapi.EnvTokensFile+")")
}

// loadTokens reads the token file at path, or returns nil when path is
// empty: an API without tokens serves everyone as the single tenant.
func (a *app) loadTokens(path string) (*httpapi.Tokens, error) {
	if path == "" {
		return nil, nil
	}
	tokens, err := httpapi.LoadTokens(path)
	if err != nil {
		return nil, inputError{err}
	}
	if tokens.Len() == 0 {
		a.logger.Warn("The API token file lists no token: every request but /healthz is refused", "file", path)
	}
	a.logger.Info("API bearer tokens required", "file", path, "tokens", tokens.Len())
	return tokens, nil
}

// requireTokensOffLoopback refuses to serve addr without tokens unless only
// this machine can reach it: anyone who reaches the API can send from the
// operator's accounts and read every notification.
func requireTokensOffLoopback(addr string, tokens *httpapi.Tokens) error {
	if tokens != nil {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return inputErrorf("--addr %s: %v", addr, err)
	}
	if isLoopback(host) {
		return nil
	}
	return inputErrorf("refusing to serve the API on %s, which is not a loopback address, without bearer tokens; %s", addr, makeTokensHelp)
}

// isLoopback reports whether host names only this machine: localhost or a
// loopback IP (127.0.0.0/8, ::1). An empty host, 0.0.0.0 and any other name
// listen on or may resolve to public interfaces.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tokensPoll is how often the API looks for a changed token file.
const tokensPoll = 10 * time.Second

// reloadTokens re-reads tokens on every SIGHUP, and when the file's content
// has changed (looked at every a.tokensPoll), until ctx is done or the
// returned func is called: an operator without a shell on the server (a
// Kubernetes secret volume, a deployment tool that rewrites the file)
// revokes a token by removing its line. A file that fails to load leaves
// the tokens in force and is logged, once per change.
func (a *app) reloadTokens(ctx context.Context, tokens *httpapi.Tokens) func() {
	if tokens == nil {
		return func() {}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	poll := time.NewTicker(a.tokensPoll)
	go func() {
		defer close(done)
		defer poll.Stop()
		unreadable := false
		for {
			var err error
			changed := true
			select {
			case <-ctx.Done():
				return
			case <-hup:
				err = tokens.Reload()
			case <-poll.C:
				changed, err = tokens.ReloadIfChanged()
				if err != nil && !changed {
					// Unreadable: said once, until it is readable again.
					if !unreadable {
						a.logger.Error("Could not read the API token file; the previous tokens stay in force", "error", err)
					}
					unreadable = true
					continue
				}
				unreadable = false
			}
			switch {
			case err != nil:
				a.logger.Error("Could not reload the API tokens; the previous ones stay in force", "error", err)
			case changed:
				a.logger.Info("API tokens reloaded", "file", tokens.Path(), "tokens", tokens.Len())
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}

// token prints a new random bearer token and the token file's line for it.
func (a *app) token(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	tenant := fs.String("tenant", "", "tenant the token acts for (required)")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return inputErrorf("token takes no arguments, got %q", fs.Args())
	}
	if *tenant == "" {
		return inputErrorf("--tenant is required")
	}
	if err := onceflow.ValidateTenant(*tenant); err != nil {
		return inputErrorf("--tenant: %v", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("generate a token: %w", err)
	}
	token := hex.EncodeToString(raw)
	fmt.Fprintf(a.stdout, "# The token for tenant %s: give it to the caller; it is stored nowhere.\n%s\n", *tenant, token)
	fmt.Fprintf(a.stdout, "# Append this line to the token file (%s); the API reads it within 10s, or at once on SIGHUP:\n%s\n", httpapi.EnvTokensFile, httpapi.HashLine(*tenant, token))
	return nil
}
