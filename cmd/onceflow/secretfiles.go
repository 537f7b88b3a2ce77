package main

import (
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/feed"
	"github.com/onceflow/onceflow/preferences"
	"github.com/onceflow/onceflow/providers/chat"
	"github.com/onceflow/onceflow/providers/email"
	"github.com/onceflow/onceflow/providers/sms"
	"github.com/onceflow/onceflow/providers/webhook"
	"github.com/onceflow/onceflow/redisconn"
)

// FileSuffix turns a secret's variable into the one that names a file
// holding it: ONCEFLOW_CODEC_KEYS_FILE=/run/secrets/codec-keys. Docker
// and Kubernetes mount secrets as files, which, unlike environment
// variables, do not show in `docker inspect` or a process listing.
const FileSuffix = "_FILE"

// secretVars are the variables that may be given as <name>_FILE.
var secretVars = []string{
	codec.EnvKeys, webhook.SecretEnv, redisconn.EnvURL,
	sms.EnvAuthToken, email.EnvPassword, chat.EnvBotToken, feed.EnvTokenSecret,
	preferences.EnvUnsubscribeSecret,
}

// secretFiles returns env with every secret given as <name>_FILE read from
// its file (one trailing newline dropped, as `echo` and editors leave one).
// Both forms at once is an error, as is a file that cannot be read; the
// error names the variable and the path, never the content.
func secretFiles(env envconfig.EnvLookup) (envconfig.EnvLookup, error) {
	values := map[string]string{}
	for _, name := range secretVars {
		path, ok := env.LookupEnv(name + FileSuffix)
		if !ok || path == "" {
			continue
		}
		if v, set := env.LookupEnv(name); set && v != "" {
			return nil, fmt.Errorf("both %s and %s%s are set; set one", name, name, FileSuffix)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s%s: %w", name, FileSuffix, err)
		}
		values[name] = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	if len(values) == 0 {
		return env, nil
	}
	return fileEnv{EnvLookup: env, values: values}, nil
}

// fileEnv is an environment with some values read from files.
type fileEnv struct {
	envconfig.EnvLookup
	values map[string]string
}

func (e fileEnv) LookupEnv(name string) (string, bool) {
	if v, ok := e.values[name]; ok {
		return v, true
	}
	return e.EnvLookup.LookupEnv(name)
}
