package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow/templates"
)

// TypeTemplate is the failure type of a template that cannot be rendered:
// missing, broken, or lacking a variable. It is not retried.
const TypeTemplate = "TemplateError"

// Renderer renders named templates.
type Renderer interface {
	Render(name string, data map[string]any) (templates.Rendered, error)
}

// RenderInput names a template and its data.
type RenderInput struct {
	Template string         `json:"template"`
	Data     map[string]any `json:"data,omitempty"`
}

// Render renders a notification's template once, before any delivery, so
// that every delivery and every replay uses the same recorded text.
func (a *Activities) Render(_ context.Context, in RenderInput) (templates.Rendered, error) {
	if a.Templates == nil {
		return templates.Rendered{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("template %q: this worker has no templates directory (%s)", in.Template, templates.EnvDir), TypeTemplate, nil)
	}
	r, err := a.Templates.Render(in.Template, in.Data)
	var te *templates.Error
	if errors.As(err, &te) {
		return templates.Rendered{}, temporal.NewNonRetryableApplicationError(te.Error(), TypeTemplate, nil)
	}
	return r, err
}
