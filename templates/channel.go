package templates

import "github.com/onceflow/onceflow"

// For returns the body, and for e-mail the HTML body, that channel ch
// sends of r: the text for webhooks and e-mail, the short form for SMS,
// push and chat.
func (r Rendered) For(ch onceflow.Channel) (body, html string) {
	switch ch {
	case onceflow.Email:
		return r.Text, r.HTML
	case onceflow.SMS, onceflow.Push, onceflow.Chat:
		return r.Short, ""
	}
	return r.Text, ""
}
