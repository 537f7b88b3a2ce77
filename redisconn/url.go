package redisconn

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// EnvURL names the variable with Redis's URL (envvar.RedisURL).
const EnvURL = "REDIS_URL"

// DefaultURL is the worker's Redis when REDIS_URL is unset.
const DefaultURL = "redis://127.0.0.1:6379/0"

// The schemes of a Redis Cluster's REDIS_URL, without and with TLS. A
// cluster is named by its scheme rather than guessed from the number of
// hosts: one seed node is a valid cluster URL, and a single server must
// never be driven as a cluster (or the other way round) because a host was
// added or removed.
const (
	clusterScheme    = "redis+cluster"
	clusterTLSScheme = "rediss+cluster"
)

// IsClusterURL reports whether raw names a Redis Cluster
// (redis+cluster:// or rediss+cluster://).
func IsClusterURL(raw string) bool {
	return strings.HasPrefix(raw, clusterScheme+"://") || strings.HasPrefix(raw, clusterTLSScheme+"://")
}

// ParseClusterURL reads a Redis Cluster's REDIS_URL,
//
//	redis+cluster://[user:password@]host1:port1,host2:port2,.../[?option=value...]
//
// (rediss+cluster:// for TLS, verified against the first host's name):
// the hosts are seed nodes, from which the client learns the others; the
// options are redis.ParseClusterURL's. A cluster has only database 0, so
// the path may be empty, / or /0. Its errors never hold the password.
func ParseClusterURL(raw string) (*redis.ClusterOptions, error) {
	const form = "redis+cluster://[user:password@]host:port,host:port/"
	scheme, rest, _ := strings.Cut(raw, "://")
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo, hosts := "", authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hosts = authority[:at+1], authority[at+1:]
	}
	bad := func(why string, args ...any) error {
		return fmt.Errorf("%s=%s is not a valid Redis Cluster URL (%s): %s", EnvURL, Redact(raw), form, fmt.Sprintf(why, args...))
	}
	var addrs []string
	for i, h := range strings.Split(hosts, ",") {
		if h == "" {
			return nil, bad("host %d is empty", i+1)
		}
		if !strings.Contains(h, ":") || strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			h += ":6379"
		}
		host, port, err := net.SplitHostPort(h)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return nil, bad("host %d (%s) is not host:port", i+1, h)
		}
		addrs = append(addrs, h)
	}
	path, query, _ := strings.Cut(strings.SplitN(tail, "#", 2)[0], "?")
	if path != "" && path != "/" && path != "/0" {
		return nil, bad("database %s: a Redis Cluster has only database 0", strings.TrimPrefix(path, "/"))
	}
	single := "redis"
	if scheme == clusterTLSScheme {
		single = "rediss"
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, bad("its options do not parse: %v", err)
	}
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	opts, err := redis.ParseClusterURL(single + "://" + userinfo + addrs[0] + "/?" + q.Encode())
	if err == nil {
		return opts, nil
	}
	// go-redis's own errors quote the URL, password included, when the
	// fault is in the user or password; say which part is at fault
	// without them.
	if _, serr := redis.ParseClusterURL(single + "://" + addrs[0] + "/?" + q.Encode()); serr != nil {
		return nil, bad("%s", strings.TrimPrefix(serr.Error(), "redis: "))
	}
	return nil, fmt.Errorf("%s is not a valid Redis Cluster URL: its user or password does not parse (not shown; %%-escape reserved characters)", EnvURL)
}

// ParseURL reads a REDIS_URL as redis.ParseURL does, with an error
// that never holds its password: url.Parse quotes the whole URL in its
// errors ("parse \"redis://u:s3cret@host:x\": invalid port"), and an
// escape error in the password quotes part of it.
func ParseURL(raw string) (*redis.Options, error) {
	opts, err := redis.ParseURL(raw)
	if err == nil {
		return opts, nil
	}
	safe := Redact(raw)
	if _, serr := redis.ParseURL(safe); serr != nil {
		// The fault is outside the password: say what it is, on the
		// redacted URL.
		msg := strings.ReplaceAll(serr.Error(), fmt.Sprintf("%q", safe), "")
		msg = strings.TrimPrefix(strings.TrimPrefix(msg, "parse : "), "redis: ")
		return nil, fmt.Errorf("%s=%s is not a valid Redis URL (redis://[user:password@]host:port/db, or %s://host:port,host:port/ for a cluster): %s", EnvURL, safe, clusterScheme, msg)
	}
	return nil, fmt.Errorf("%s is not a valid Redis URL: its user or password does not parse (not shown; %%-escape reserved characters)", EnvURL)
}

// Redact replaces the password of a Redis URL with "xxxxx", for logs and
// errors. It works by string operations alone, so that it works on a URL
// that does not parse too.
func Redact(raw string) string {
	rest, scheme := raw, ""
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return raw
	}
	return scheme + user + ":xxxxx" + rest[at:]
}
