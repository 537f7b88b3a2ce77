// Package envvar owns the table of Onceflow's environment variables
// (vars.go): each Var carries a variable's name, its default, what it
// means and which processes read it. The loaders of the configuration
// types (redisconn.Load, worker.LoadConfig, httpapi.LoadConfig and the CLI's)
// read their variables through it, and the reference docs/configuration.md
// is generated from it (go run ./internal/configdoc), so that the two
// cannot name another variable or default than the code applies.
package envvar

import (
	"fmt"
	"strconv"
	"time"
)

// Var is one environment variable.
type Var struct {
	// Name is the variable's name, e.g. ONCEFLOW_DEDUP_WINDOW.
	Name string
	// Default is what applies when the variable is unset or empty, as the
	// reference shows it; the typed readers parse it, so it must parse.
	Default string
	// Meaning says what the variable does, in one paragraph of Markdown.
	Meaning string
	// ReadBy names the processes that read the variable (Worker, API,
	// Dev, a CLI command, Every); a bad value is an error in each.
	ReadBy []string
}

// Get returns the variable's value through getenv, or its Default when it
// is unset or empty.
func (v Var) Get(getenv func(string) string) string {
	if s := getenv(v.Name); s != "" {
		return s
	}
	return v.Default
}

// Duration reads a positive duration such as 30s or 720h. A bad value is
// an error that names the variable and the value.
func (v Var) Duration(getenv func(string) string) (time.Duration, error) {
	s := v.Get(getenv)
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive duration such as 30s or 720h", v.Name, s)
	}
	return d, nil
}

// Int reads a whole number of at least min, what being what it counts
// (workflows, replicas) for the error.
func (v Var) Int(getenv func(string) string, min int, what string) (int, error) {
	s := v.Get(getenv)
	n, err := strconv.Atoi(s)
	if err != nil || n < min {
		return 0, fmt.Errorf("%s=%q is not a number of %s (%d or more)", v.Name, s, what, min)
	}
	return n, nil
}
