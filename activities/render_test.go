package activities_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/onceflow/onceflow/activities"
	"github.com/onceflow/onceflow/templates"
)

// A template's rendered text, carried by every step of the notification,
// is bounded as a body given in clear is (onceflow.MaxContentBytes): 30 KB
// of text is fine for one delivery and refused for 300, naming the
// template, before anything is sent.
func TestRenderedContentTimesStepsIsBounded(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "digest"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "digest", "text.tmpl"), []byte("{{.text}}"), 0o644))
	dir, err := templates.NewDir(root)
	require.NoError(t, err)
	acts := &activities.Activities{Templates: dir}
	render := func(steps int) error {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(acts)
		env.SetTestTimeout(30 * time.Second)
		_, err := env.ExecuteActivity(acts.Render, activities.RenderInput{Template: "digest", Data: map[string]any{"text": strings.Repeat("t", 30_000)}, Steps: steps})
		return err
	}
	assert.NoError(t, render(1))
	assert.NoError(t, render(0), "inputs from before Steps existed")
	err = render(300)
	require.Error(t, err)
	assert.Equal(t, activities.TypeTemplate, appError(t, err).Type())
	assert.Contains(t, err.Error(), `template "digest" renders 30000 bytes per delivery, carried by each of 300 deliveries and fallbacks`)
}
