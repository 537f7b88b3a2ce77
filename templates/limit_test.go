package templates_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow/templates"
)

// A template whose output blows up (a range over a big list, ranges nested
// in ranges) fails with an error naming the template, the part and the
// limit, and renders nothing: no delivery gets a partial text.
func TestRenderedOutputIsBounded(t *testing.T) {
	items := make([]any, 2000)
	for i := range items {
		items[i] = fmt.Sprintf("item-%04d", i)
	}
	for file, src := range map[string]string{
		"text.tmpl":    `{{range .items}}{{range $.items}}{{.}} {{end}}{{end}}`,
		"html.tmpl":    `{{range .items}}<li>{{.}} {{$.pad}}</li>{{end}}`,
		"short.tmpl":   `{{range .items}}{{$.pad}}{{end}}`,
		"subject.tmpl": `{{range .items}}x{{end}}`,
	} {
		t.Run(file, func(t *testing.T) {
			files := map[string]string{"digest/text.tmpl": "Digest", "digest/" + file: src}
			r, err := dir(t, files).Render("digest", map[string]any{"items": items, "pad": strings.Repeat("p", 100)})
			require.Error(t, err)
			assert.Equal(t, templates.Rendered{}, r)
			var te *templates.Error
			require.ErrorAs(t, err, &te)
			assert.Equal(t, "digest", te.Template)
			if file == "subject.tmpl" {
				assert.Contains(t, err.Error(), "at most 998")
				return
			}
			assert.Contains(t, err.Error(), fmt.Sprintf(`template "digest": %s renders more than 65536 bytes`, file))
		})
	}
	r, err := dir(t, map[string]string{"digest/text.tmpl": `{{range .items}}{{.}} {{end}}`}).Render("digest", map[string]any{"items": items})
	require.NoError(t, err, "20 KB is fine")
	assert.Len(t, r.Text, 2000*len("item-0000 "))
}
