package workflows

import "github.com/onceflow/onceflow"

// NewWithValidator is New with validate in place of Notification.Validate,
// for tests that change the validation rules.
func NewWithValidator(p Policy, validate func(onceflow.Notification) error) *Workflow {
	w := New(p)
	w.validate = validate
	return w
}
