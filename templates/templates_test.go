package templates_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/templates"
)

func dir(t *testing.T, files map[string]string) *templates.Dir {
	root := t.TempDir()
	for path, content := range files {
		full := filepath.Join(root, path)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
	}
	d, err := templates.NewDir(root)
	require.NoError(t, err)
	return d
}

var shipped = map[string]string{
	"order-shipped/subject.tmpl": "Order {{.order}} shipped\n",
	"order-shipped/text.tmpl":    "Hi {{.name}}, order {{.order}} is on its way.",
	"order-shipped/html.tmpl":    "<p>Hi {{.name}}, order <b>{{.order}}</b> is on its way.</p>",
	"order-shipped/short.tmpl":   "Order {{.order}} shipped",
}

func TestRenderEveryPart(t *testing.T) {
	r, err := dir(t, shipped).Render("order-shipped", map[string]any{"name": "Ada", "order": 42})
	require.NoError(t, err)
	assert.Equal(t, templates.Rendered{
		Subject: "Order 42 shipped",
		Text:    "Hi Ada, order 42 is on its way.",
		HTML:    "<p>Hi Ada, order <b>42</b> is on its way.</p>",
		Short:   "Order 42 shipped",
	}, r)
}

func TestHTMLIsEscapedAndTextIsNot(t *testing.T) {
	r, err := dir(t, shipped).Render("order-shipped", map[string]any{"name": "<script>x</script> & co", "order": 1})
	require.NoError(t, err)
	assert.Contains(t, r.HTML, "&lt;script&gt;x&lt;/script&gt; &amp; co")
	assert.Contains(t, r.Text, "<script>x</script> & co")
}

func TestShortFallsBackToText(t *testing.T) {
	r, err := dir(t, map[string]string{"otp/text.tmpl": "Your code is {{.code}}"}).Render("otp", map[string]any{"code": "123456"})
	require.NoError(t, err)
	assert.Equal(t, "Your code is 123456", r.Short)
	assert.Empty(t, r.HTML)
	assert.Empty(t, r.Subject)
}

func TestMissingVariableNamesTemplateAndVariable(t *testing.T) {
	for _, file := range []string{"text", "html", "subject", "short"} {
		_, err := dir(t, map[string]string{
			"t/text.tmpl":         "ok",
			"t/" + file + ".tmpl": "{{.present}} {{.absent}}",
		}).Render("t", map[string]any{"present": 1})
		var te *templates.Error
		require.ErrorAs(t, err, &te, file)
		assert.Equal(t, "t", te.Template)
		assert.Equal(t, "absent", te.Variable, file)
		assert.Contains(t, err.Error(), `"absent"`)
	}
}

func TestMissingOrBrokenTemplates(t *testing.T) {
	d := dir(t, map[string]string{
		"no-text/subject.tmpl": "s",
		"broken/text.tmpl":     "{{.name",
	})
	for name, want := range map[string]string{
		"nope":     "does not exist",
		"no-text":  "text.tmpl is missing",
		"broken":   "unclosed action",
		"../etc":   "not a valid template name",
		"Capitals": "not a valid template name",
	} {
		_, err := d.Render(name, nil)
		var te *templates.Error
		require.ErrorAs(t, err, &te, name)
		assert.Contains(t, err.Error(), want, name)
	}
}

func TestRenderingIsDeterministic(t *testing.T) {
	d := dir(t, map[string]string{"m/text.tmpl": "{{range $k, $v := .}}{{$k}}={{$v}};{{end}}"})
	data := map[string]any{"b": 2, "a": 1, "c": 3}
	first, err := d.Render("m", data)
	require.NoError(t, err)
	for range 20 {
		again, err := d.Render("m", data)
		require.NoError(t, err)
		assert.Equal(t, first, again)
	}
	assert.Equal(t, "a=1;b=2;c=3;", first.Text, "map keys in sorted order")
}

func TestNewDirNamesTheVariable(t *testing.T) {
	_, err := templates.NewDir(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorContains(t, err, templates.EnvDir)
}
