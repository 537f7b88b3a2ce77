package providers

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// NewHTTPClient returns a client for providers' HTTP APIs: a timeout as a
// last resort (the caller's context is the real deadline) and no redirects,
// since a redirected POST would be re-sent as a GET.
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Response is a provider's 2xx answer.
type Response struct {
	Status int
	Header http.Header
	// Body is at most 1 MiB of the body.
	Body []byte
}

// DoHTTP sends req for the provider called name and returns the response
// when the status is 2xx. Any other
// outcome is a classified *Error: a transport failure by
// ClassifyTransport, a status by ClassifyHTTPStatus, its message completed
// by detail(body) when detail is given. Request URLs, which may carry
// credentials, are kept out of errors.
func DoHTTP(c *http.Client, req *http.Request, name string, detail func(body []byte) string) (Response, error) {
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return Response{}, ClassifyTransport(fmt.Errorf("%s: %w", name, err))
	}
	defer resp.Body.Close()
	// A body cut short does not change what the status said.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	out := Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if err := ClassifyHTTPStatus(resp.StatusCode, resp.Header, time.Now()); err != nil {
		pe := err.(*Error)
		msg := pe.Err.Error()
		if detail != nil {
			if d := detail(body); d != "" {
				msg += ": " + d
			}
		}
		pe.Err = fmt.Errorf("%s: %s", name, msg)
		return out, pe
	}
	return out, nil
}
