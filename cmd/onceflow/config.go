package main

import (
	"github.com/redis/go-redis/v9"

	"github.com/onceflow/onceflow/httpapi"
)

// config is the invocation's API configuration (httpapi.LoadConfig),
// read once: the API and the commands that act as its client (send,
// broadcast, preferences, feed, subscriber-token) share it, so that a value
// the API refuses is an input error in each of them too.
func (a *app) config() (httpapi.Config, error) {
	if a.cfg == nil {
		cfg, err := httpapi.LoadConfig(a.getenv)
		if err != nil {
			return httpapi.Config{}, inputError{err}
		}
		a.cfg = &cfg
	}
	return *a.cfg, nil
}

// redis is the invocation's one Redis client, opened from config's Redis
// settings the first time a command needs it and closed when the command
// returns: the ledger, the recipient lists, the preferences and the feed
// share it. Its commands give up at their context's deadline, so that a
// Redis that hangs cannot stall a request or a start.
func (a *app) redis() (redis.UniversalClient, error) {
	if a.rdb != nil {
		return a.rdb, nil
	}
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	rdb, err := cfg.Redis.Open(true)
	if err != nil {
		return nil, inputError{err}
	}
	a.rdb = rdb
	return rdb, nil
}

// closeRedis closes the client redis opened, if any.
func (a *app) closeRedis() {
	if a.rdb != nil {
		_ = a.rdb.Close()
		a.rdb = nil
	}
}
