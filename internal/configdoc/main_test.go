package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/envvar"
	"github.com/onceflow/onceflow/worker"
)

// docs/configuration.md is what the table generates: regenerate it with
// go run ./internal/configdoc > docs/configuration.md.
func TestReferenceIsGenerated(t *testing.T) {
	var b strings.Builder
	require.NoError(t, write(&b))
	file, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	assert.Equal(t, b.String(), string(file), "docs/configuration.md differs from the table in internal/envvar: run go run ./internal/configdoc > docs/configuration.md")
}

// families are the variables documented by one row for several numbered
// or related names.
var families = map[string]string{
	"ONCEFLOW_SMTP_ADDR":            "ONCEFLOW_SMTP_",
	"ONCEFLOW_TWILIO_ACCOUNT_SID":   "ONCEFLOW_TWILIO_",
	"ONCEFLOW_FCM_CREDENTIALS_FILE": "ONCEFLOW_FCM_",
	"ONCEFLOW_SLACK_BOT_TOKEN":      "ONCEFLOW_SLACK_",
}

// row is the table's row that documents the variable name.
func row(name string) (envvar.Var, bool) {
	for _, s := range envvar.Sections {
		for _, v := range s.Vars {
			if v.Name == name || families[v.Name] != "" && strings.HasPrefix(name, families[v.Name]) {
				return v, true
			}
		}
	}
	return envvar.Var{}, false
}

// read records the variables load reads from an empty environment.
func read(load func(func(string) string) error) []string {
	var names []string
	_ = load(func(name string) string {
		names = append(names, name)
		return ""
	})
	return names
}

// Every variable a loader reads has a row that says its process reads it,
// and every row that says so is read by it (but those read outside the
// loader: flags' defaults, metrics, codec, Temporal, tracing).
func TestLoadersReadWhatTheReferenceSays(t *testing.T) {
	outside := []string{envvar.APIAddr.Name, envvar.APITokensFile.Name, envvar.CodecOrigins.Name, envvar.MetricsAddr.Name}
	for process, load := range map[string]func(func(string) string) error{
		envvar.Worker: func(getenv func(string) string) error { _, err := worker.LoadConfig(getenv); return err },
		envvar.API:    func(getenv func(string) string) error { _, err := httpapi.LoadConfig(getenv); return err },
	} {
		names := read(load)
		documented := map[string]bool{}
		for _, name := range names {
			v, ok := row(name)
			if assert.True(t, ok, "%s reads %s, which docs/configuration.md does not list", process, name) {
				assert.Contains(t, v.ReadBy, process, "%s reads %s", process, name)
				documented[v.Name] = true
			}
		}
		for _, s := range envvar.Sections {
			for _, v := range s.Vars {
				if slices.Contains(v.ReadBy, process) && !slices.Contains(outside, v.Name) {
					assert.True(t, documented[v.Name], "the reference says %s reads %s, but its loader does not", process, v.Name)
				}
			}
		}
	}
}
