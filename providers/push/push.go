// Package push delivers notifications to devices through Firebase Cloud
// Messaging's HTTP v1 API, authenticated with an OAuth2 token obtained from
// a service-account key. The delivery ID is the Android collapse key and the
// APNs collapse ID, so a re-sent delivery replaces the first on the device
// instead of showing twice.
package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/onceflow/onceflow/providers"
)

// Environment variables read by ConfigFromEnv.
const (
	// EnvCredentialsFile is the service-account key file; push is off when
	// it is unset.
	EnvCredentialsFile = "ONCEFLOW_FCM_CREDENTIALS_FILE"
	// EnvProjectID overrides the key's project_id.
	EnvProjectID = "ONCEFLOW_FCM_PROJECT_ID"
	EnvEndpoint  = "ONCEFLOW_FCM_ENDPOINT"
)

// DefaultEndpoint is FCM's API.
const DefaultEndpoint = "https://fcm.googleapis.com"

const scope = "https://www.googleapis.com/auth/firebase.messaging"

// Config is a Firebase project's credentials.
type Config struct {
	// CredentialsJSON is the service-account key (its token_uri says where
	// tokens come from).
	CredentialsJSON []byte
	ProjectID       string
	Endpoint        string
}

// ConfigFromEnv reads a Config; ok is false when push is not configured.
func ConfigFromEnv(getenv func(string) string) (Config, bool, error) {
	path := getenv(EnvCredentialsFile)
	if path == "" {
		return Config{}, false, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, true, fmt.Errorf("push: %s: %w", EnvCredentialsFile, err)
	}
	return Config{CredentialsJSON: b, ProjectID: getenv(EnvProjectID), Endpoint: getenv(EnvEndpoint)}, true, nil
}

// Sender sends push notifications for one Firebase project.
type Sender struct {
	endpoint string
	tokens   oauth2.TokenSource
	client   *http.Client
}

// New checks cfg and returns a Sender. The key is never logged or kept
// anywhere but in memory.
func New(cfg Config) (*Sender, error) {
	jwt, err := google.JWTConfigFromJSON(cfg.CredentialsJSON, scope)
	if err != nil {
		return nil, fmt.Errorf("push: %s is not a service-account key: %w", EnvCredentialsFile, err)
	}
	if cfg.ProjectID == "" {
		var key struct {
			ProjectID string `json:"project_id"`
		}
		_ = json.Unmarshal(cfg.CredentialsJSON, &key)
		cfg.ProjectID = key.ProjectID
	}
	if cfg.ProjectID == "" {
		return nil, fmt.Errorf("push: no project_id in the key; set %s", EnvProjectID)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	if u, err := url.Parse(cfg.Endpoint); err != nil || u.Host == "" {
		return nil, fmt.Errorf("push: %s=%q is not an absolute URL", EnvEndpoint, cfg.Endpoint)
	}
	return &Sender{
		endpoint: strings.TrimRight(cfg.Endpoint, "/") + "/v1/projects/" + url.PathEscape(cfg.ProjectID) + "/messages:send",
		tokens:   jwt.TokenSource(context.Background()),
		client:   providers.NewHTTPClient(),
	}, nil
}

type message struct {
	Token        string            `json:"token"`
	Notification notification      `json:"notification"`
	Data         map[string]string `json:"data"`
	Android      android           `json:"android"`
	APNS         apns              `json:"apns"`
}

type notification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body"`
}

type android struct {
	CollapseKey string `json:"collapse_key"`
}

type apns struct {
	Headers map[string]string `json:"headers"`
}

// Send pushes m to the device token in m.To. Every failure is a
// *providers.Error.
func (s *Sender) Send(ctx context.Context, m providers.Message) (providers.Receipt, error) {
	token, err := s.tokens.Token()
	if err != nil {
		// No request reached FCM. A refused key will not get better.
		var re *oauth2.RetrieveError
		permanent := errors.As(err, &re) && re.Response != nil && re.Response.StatusCode/100 == 4
		return providers.Receipt{}, &providers.Error{Permanent: permanent, Err: fmt.Errorf("push: get an access token: %w", err)}
	}
	body, err := json.Marshal(map[string]message{"message": {
		Token:        m.To,
		Notification: notification{Title: m.Subject, Body: m.Body},
		Data:         map[string]string{"onceflow_key": m.Key, "onceflow_delivery_id": m.DeliveryID},
		Android:      android{CollapseKey: m.DeliveryID},
		APNS:         apns{Headers: map[string]string{"apns-collapse-id": m.DeliveryID}},
	}})
	if err != nil {
		return providers.Receipt{}, &providers.Error{Permanent: true, Err: fmt.Errorf("push: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return providers.Receipt{}, &providers.Error{Permanent: true, Err: fmt.Errorf("push: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	token.SetAuthHeader(req)
	resp, err := providers.DoHTTP(s.client, req, providers.API{Name: "push", Receiver: providers.Deduplicating, Detail: fcmError})
	if err != nil {
		return providers.Receipt{}, classify(resp.Body, err)
	}
	var out struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(resp.Body, &out)
	if out.Name == "" {
		out.Name = "FCM accepted"
	}
	return providers.Receipt{ID: out.Name}, nil
}

// fcmErrors is FCM's ErrorCode table
// (firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode): whether a
// send that got the code is permanent, and the least wait before the next
// one. FCM performed none of them; a push re-sent after INTERNAL or
// UNAVAILABLE carries the same collapse IDs. Codes not listed, and answers
// without one, are classified by their HTTP status.
var fcmErrors = map[string]struct {
	permanent bool
	wait      time.Duration
}{
	"INVALID_ARGUMENT":       {permanent: true},
	"UNREGISTERED":           {permanent: true},
	"SENDER_ID_MISMATCH":     {permanent: true},
	"THIRD_PARTY_AUTH_ERROR": {permanent: true},
	// "use exponential backoff with a minimum initial delay of 1 minute"
	"QUOTA_EXCEEDED": {wait: time.Minute},
	// Retry-After when given, exponential backoff otherwise.
	"UNAVAILABLE":       {},
	"INTERNAL":          {},
	"UNSPECIFIED_ERROR": {},
}

// classify refines DoHTTP's classification of a failed send by the FCM
// error code in body.
func classify(body []byte, err error) error {
	code := fcmErrorCode(body)
	c, ok := fcmErrors[code]
	if !ok {
		return err
	}
	pe := providers.Classify(err)
	if !pe.MaybeSent {
		pe.Permanent = c.permanent
		pe.RetryAfter = max(pe.RetryAfter, c.wait)
	}
	return pe
}

func fcmErrorCode(body []byte) string {
	var e struct {
		Error struct {
			Details []struct {
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	for _, d := range e.Error.Details {
		if d.ErrorCode != "" {
			return d.ErrorCode
		}
	}
	return ""
}

// fcmError reads FCM's error body: its status and FCM error code.
func fcmError(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
			Details []struct {
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Status == "" {
		return ""
	}
	out := e.Error.Status
	for _, d := range e.Error.Details {
		if d.ErrorCode != "" {
			out += " " + d.ErrorCode
		}
	}
	return out + ": " + e.Error.Message
}
