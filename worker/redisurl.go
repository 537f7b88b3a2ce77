package worker

import (
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ParseRedisURL reads a REDIS_URL as redis.ParseURL does, with an error
// that never holds its password: url.Parse quotes the whole URL in its
// errors ("parse \"redis://u:s3cret@host:x\": invalid port"), and an
// escape error in the password quotes part of it.
func ParseRedisURL(raw string) (*redis.Options, error) {
	opts, err := redis.ParseURL(raw)
	if err == nil {
		return opts, nil
	}
	safe := RedactRedisURL(raw)
	if _, serr := redis.ParseURL(safe); serr != nil {
		// The fault is outside the password: say what it is, on the
		// redacted URL.
		msg := strings.ReplaceAll(serr.Error(), fmt.Sprintf("%q", safe), "")
		msg = strings.TrimPrefix(strings.TrimPrefix(msg, "parse : "), "redis: ")
		return nil, fmt.Errorf("%s=%s is not a valid Redis URL (redis://[user:password@]host:port/db): %s", EnvRedisURL, safe, msg)
	}
	return nil, fmt.Errorf("%s is not a valid Redis URL: its user or password does not parse (not shown; %%-escape reserved characters)", EnvRedisURL)
}

// RedactRedisURL replaces the password of a Redis URL with "xxxxx", by
// string operations alone, so that it works on a URL that does not parse.
func RedactRedisURL(raw string) string {
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
