package httpapi

import (
	"errors"
	"html/template"
	"net/http"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/preferences"
)

// errNoPreferences says the API was started without a preference service.
var errNoPreferences = errors.New("this API has no preference service")

// maxUnsubscribeBody bounds a one-click POST, whose body is
// "List-Unsubscribe=One-Click".
const maxUnsubscribeBody = 4 << 10

// The unsubscribe page: no login, no script, every value escaped by
// html/template. GET only shows what the link does (mail scanners follow
// links); the opt-out needs the POST that RFC 8058's one-click and the
// page's button send.
var unsubscribePageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}}</title><style>body{font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .Confirm}}<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>{{end}}
</body></html>
`))

type unsubscribePage struct {
	Title, Message string
	Confirm        bool
}

func writePage(w http.ResponseWriter, code int, page unsubscribePage) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The token in the URL is a credential: neither cached nor sent on.
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = unsubscribePageTemplate.Execute(w, page)
}

// what names a link's opt-out for a person.
func what(l preferences.Link) string {
	category, channel := l.Category+" messages", "on "+l.Channel
	if l.Category == preferences.Any {
		category = "all messages but essential ones"
	}
	if l.Channel == preferences.Any {
		channel = "on every channel"
	}
	return category + " " + channel
}

// linkRefused answers a link that cannot be followed, or could not be
// followed now.
func (h *api) linkRefused(w http.ResponseWriter, err error) {
	var invalid *onceflow.ValidationError
	switch {
	case errors.Is(err, preferences.ErrExpiredLink):
		writePage(w, http.StatusGone, unsubscribePage{Title: "Link expired", Message: "This unsubscribe link has expired. Use the link in a more recent message, or change your preferences in the app."})
	case errors.Is(err, preferences.ErrRevokedLink):
		// As an expired link: it worked once and no longer does.
		writePage(w, http.StatusGone, unsubscribePage{Title: "Link no longer valid", Message: "This unsubscribe link is no longer valid. Use the link in a more recent message, or change your preferences in the app."})
	case errors.Is(err, preferences.ErrInvalidLink):
		writePage(w, http.StatusBadRequest, unsubscribePage{Title: "Invalid link", Message: "This unsubscribe link is not valid. Nothing was changed."})
	case errors.As(err, &invalid):
		writePage(w, http.StatusBadRequest, unsubscribePage{Title: "Cannot unsubscribe", Message: "These messages are essential and cannot be unsubscribed from. Nothing was changed."})
	case errors.Is(err, preferences.ErrNoUnsubscribeKey), errors.Is(err, errNoPreferences):
		writePage(w, http.StatusServiceUnavailable, unsubscribePage{Title: "Unavailable", Message: "Unsubscribing is not available here. Nothing was changed."})
	default:
		h.log.Error("Unsubscribe failed", "error", err)
		writePage(w, http.StatusServiceUnavailable, unsubscribePage{Title: "Try again", Message: "Your request could not be completed. Nothing was changed; please try again."})
	}
}

// The unsubscribe routes are limited per client address before the link
// is checked, and per subscriber once its signature has said whose it is
// (limits.go).

// checkLink checks the path's link and charges its subscriber's budget on
// route; on failure it has answered and ok is false.
func (h *api) checkLink(w http.ResponseWriter, r *http.Request, on route) (l preferences.Link, ok bool) {
	if h.prefs == nil {
		h.linkRefused(w, errNoPreferences)
		return l, false
	}
	l, err := h.prefs.CheckUnsubscribeLink(r.Context(), r.PathValue("token"))
	if err != nil {
		h.linkRefused(w, err)
		return l, false
	}
	return l, h.admitSubscriber(w, r, on, l.Tenant, l.Subscriber)
}

func (h *api) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	if !h.admitAddress(w, r, pageRoute) {
		return
	}
	l, ok := h.checkLink(w, r, pageRoute)
	if !ok {
		return
	}
	writePage(w, http.StatusOK, unsubscribePage{Title: "Unsubscribe", Message: "Stop receiving " + what(l) + "?", Confirm: true})
}

func (h *api) unsubscribe(w http.ResponseWriter, r *http.Request) {
	if !h.admitAddress(w, r, oneClickRoute) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxUnsubscribeBody)
	if r.PostFormValue("List-Unsubscribe") != "One-Click" {
		writePage(w, http.StatusBadRequest, unsubscribePage{Title: "Bad request", Message: "An unsubscribe request must carry List-Unsubscribe=One-Click (RFC 8058). Nothing was changed."})
		return
	}
	if _, ok := h.checkLink(w, r, oneClickRoute); !ok {
		return
	}
	l, err := h.prefs.Unsubscribe(r.Context(), r.PathValue("token"))
	if err != nil {
		h.linkRefused(w, err)
		return
	}
	writePage(w, http.StatusOK, unsubscribePage{Title: "Unsubscribed", Message: "You will no longer receive " + what(l) + "."})
}
