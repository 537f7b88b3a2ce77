package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
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
	// Steps is the notification's deliveries and fallbacks, each of which
	// carries the rendered text (onceflow.MaxContentBytes); inputs
	// scheduled before it existed carry none and skip that check.
	Steps int `json:"steps,omitempty"`
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
	if err == nil && in.Steps > 0 {
		// What the largest step carries: e-mail takes the text and the
		// HTML, the short channels the short text.
		per := len(r.Subject) + max(len(r.Text)+len(r.HTML), len(r.Short))
		if per*in.Steps > onceflow.MaxContentBytes {
			return templates.Rendered{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"template %q renders %d bytes per delivery, carried by each of %d deliveries and fallbacks: more than the %d bytes a notification may carry in all; nothing was sent",
				in.Template, per, in.Steps, onceflow.MaxContentBytes), TypeTemplate, nil)
		}
	}
	return r, err
}
