// Package templates renders named notification templates from a directory
// of files, one folder per template:
//
//	<dir>/<name>/subject.tmpl   one line (optional)
//	<dir>/<name>/text.tmpl      the plain-text body (required)
//	<dir>/<name>/html.tmpl      the e-mail HTML body (optional), html/template: escaped
//	<dir>/<name>/short.tmpl     the SMS, push and chat body (optional; text.tmpl otherwise)
//
// Templates use Go's template syntax over the notification's data. A
// variable the data lacks is an error that names the template and the
// variable, never an empty string in a message.
package templates

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	texttemplate "text/template"

	"github.com/onceflow/onceflow"
)

// EnvDir names the environment variable with the templates directory.
const EnvDir = "ONCEFLOW_TEMPLATES_DIR"

// Rendered is a template rendered for one notification.
type Rendered struct {
	Subject string `json:"subject,omitempty"`
	Text    string `json:"text"`
	HTML    string `json:"html,omitempty"`
	Short   string `json:"short"`
}

// Error is a template that cannot be rendered: missing, unparsable, or
// lacking a variable. Retrying cannot fix it.
type Error struct {
	Template string
	// Variable is the data key the template needs and the data lacks.
	Variable string
	Reason   string
}

func (e *Error) Error() string {
	if e.Variable != "" {
		return fmt.Sprintf("template %q needs variable %q, which the notification's data lacks", e.Template, e.Variable)
	}
	return fmt.Sprintf("template %q: %s", e.Template, e.Reason)
}

// Dir renders templates from files under a directory, read afresh on every
// render so that edits apply without a restart; the rendered result is
// recorded in the workflow's history, so replays never read the files.
type Dir struct {
	path string
}

// NewDir returns the templates under path, which must be a directory.
func NewDir(path string) (*Dir, error) {
	info, err := os.Stat(path)
	if err != nil || !info.IsDir() {
		return nil, fmt.Errorf("templates: %s=%q is not a directory", EnvDir, path)
	}
	return &Dir{path: path}, nil
}

// Render renders the template name with data.
func (d *Dir) Render(name string, data map[string]any) (Rendered, error) {
	if !onceflow.ValidTemplateName(name) {
		return Rendered{}, &Error{Template: name, Reason: "is not a valid template name"}
	}
	folder := filepath.Join(d.path, name)
	if info, err := os.Stat(folder); err != nil || !info.IsDir() {
		return Rendered{}, &Error{Template: name, Reason: "does not exist in " + d.path}
	}
	var r Rendered
	var err error
	if r.Text, err = renderText(folder, name, "text.tmpl", data, true); err != nil {
		return Rendered{}, err
	}
	if r.Subject, err = renderText(folder, name, "subject.tmpl", data, false); err != nil {
		return Rendered{}, err
	}
	r.Subject = strings.TrimSpace(r.Subject)
	if strings.ContainsAny(r.Subject, "\r\n") {
		return Rendered{}, &Error{Template: name, Reason: "subject.tmpl renders more than one line"}
	}
	if len(r.Subject) > onceflow.MaxSubjectLength {
		return Rendered{}, &Error{Template: name, Reason: fmt.Sprintf("subject.tmpl renders %d bytes; at most %d are allowed", len(r.Subject), onceflow.MaxSubjectLength)}
	}
	if r.Short, err = renderText(folder, name, "short.tmpl", data, false); err != nil {
		return Rendered{}, err
	}
	if r.Short == "" {
		r.Short = r.Text
	}
	if r.HTML, err = renderHTML(folder, name, data); err != nil {
		return Rendered{}, err
	}
	return r, nil
}

func renderText(folder, name, file string, data map[string]any, required bool) (string, error) {
	src, err := os.ReadFile(filepath.Join(folder, file))
	if errors.Is(err, os.ErrNotExist) && !required {
		return "", nil
	}
	if err != nil {
		return "", &Error{Template: name, Reason: file + " is missing"}
	}
	t, err := texttemplate.New(file).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", &Error{Template: name, Reason: err.Error()}
	}
	var b limited
	if err := t.Execute(&b, data); err != nil {
		if errors.Is(err, errTooLarge) {
			return "", tooLarge(name, file)
		}
		return "", execError(name, err)
	}
	return b.String(), nil
}

func renderHTML(folder, name string, data map[string]any) (string, error) {
	src, err := os.ReadFile(filepath.Join(folder, "html.tmpl"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", &Error{Template: name, Reason: "html.tmpl: " + err.Error()}
	}
	t, err := htmltemplate.New("html.tmpl").Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", &Error{Template: name, Reason: err.Error()}
	}
	var b limited
	if err := t.Execute(&b, data); err != nil {
		if errors.Is(err, errTooLarge) {
			return "", tooLarge(name, "html.tmpl")
		}
		return "", execError(name, err)
	}
	return b.String(), nil
}

var missingKey = regexp.MustCompile(`(?:no entry for key|map has no entry for key) "([^"]+)"`)

func execError(name string, err error) error {
	if m := missingKey.FindStringSubmatch(err.Error()); m != nil {
		return &Error{Template: name, Variable: m[1]}
	}
	return &Error{Template: name, Reason: err.Error()}
}
