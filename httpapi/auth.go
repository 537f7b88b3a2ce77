package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/onceflow/onceflow/starter"
)

// realm is the protection space named in WWW-Authenticate.
const realm = "onceflow"

type tenantKey struct{}

// tenantOf is the tenant that Require found for the request; "" without
// tokens.
func tenantOf(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// RequestTenant is the tenant of the token that Require let r through
// with; "" when no token was required. The codec endpoint serves it.
func RequestTenant(r *http.Request) string { return tenantOf(r.Context()) }

// authError is why a request was refused, as RFC 6750 section 3 names it:
// no code when it carried no credentials.
type authError struct{ code, description string }

// Require serves next only to requests with a valid bearer token
// (Authorization: Bearer <token>, RFC 6750), with the token's tenant in
// the request's context for the API's handlers. Any other request gets
// 401 with a WWW-Authenticate challenge and a JSON Problem, and next is
// not called.
func (t *Tokens) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer, refused := bearerToken(r.Header.Values("Authorization"))
		if refused == nil {
			tenant, ok := t.Tenant(bearer)
			if ok {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tenantKey{}, tenant)))
				return
			}
			refused = &authError{"invalid_token", "carries a token that is not valid"}
		}
		msg := "a valid bearer token is required (Authorization: Bearer <token>)"
		if refused.code != "" {
			msg = "the Authorization header " + refused.description + "; " + msg
		}
		unauthorized(w, refused.code, msg)
	})
}

// unauthorized answers 401 with RFC 6750's challenge, the same on every
// route: a request that carried no credentials gets the bare challenge
// (code ""); error="invalid_request" is for a malformed Authorization
// header, error="invalid_token" for a token that was given and is not
// valid.
func unauthorized(w http.ResponseWriter, code, msg string) {
	challenge := `Bearer realm="` + realm + `"`
	if code != "" {
		challenge += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeProblem(w, http.StatusUnauthorized, Problem{Detail: msg, Field: "Authorization"})
}

// bearerToken reads the token from the Authorization header, or says why
// there is none.
func bearerToken(values []string) (string, *authError) {
	switch len(values) {
	case 0:
		return "", &authError{}
	case 1:
	default:
		return "", &authError{"invalid_request", "is given more than once"}
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(values[0]), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", &authError{"invalid_request", "is not \"Bearer <token>\""}
	}
	return token, nil
}

// Option configures Handler.
type Option func(*api)

// WithTokens makes the notification routes require a bearer token from t
// and scopes each request to the token's tenant. Without it the API
// serves everyone as the single tenant "".
func WithTokens(t *Tokens) Option { return func(h *api) { h.tokens = t } }

// authorized is f behind the token check, when the API has tokens.
func (h *api) authorized(f http.HandlerFunc) http.Handler {
	if h.tokens == nil {
		return f
	}
	return h.tokens.Require(f)
}

// client is the Go client in the scope of the request's tenant.
func (h *api) client(r *http.Request) *starter.Client {
	return h.c.ForTenant(tenantOf(r.Context()))
}
