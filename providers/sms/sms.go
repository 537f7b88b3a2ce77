// Package sms delivers notifications as text messages through the Twilio
// Messages REST API (form-encoded POST, basic auth). The API has no
// idempotency key, so a delivery whose earlier attempt may have sent is
// held rather than re-sent (see activities.Hold).
package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/onceflow/onceflow/providers"
)

// Environment variables read by ConfigFromEnv.
const (
	EnvAccountSID = "ONCEFLOW_TWILIO_ACCOUNT_SID" // sms is off when unset
	EnvAuthToken  = "ONCEFLOW_TWILIO_AUTH_TOKEN"
	EnvFrom       = "ONCEFLOW_TWILIO_FROM" // sender number, or MG... messaging service SID
	EnvBaseURL    = "ONCEFLOW_TWILIO_BASE_URL"
)

// DefaultBaseURL is Twilio's API.
const DefaultBaseURL = "https://api.twilio.com"

// Config is a Twilio account.
type Config struct {
	AccountSID, AuthToken, From, BaseURL string
}

// ConfigFromEnv reads a Config; ok is false when SMS is not configured.
func ConfigFromEnv(getenv func(string) string) (cfg Config, ok bool) {
	cfg = Config{AccountSID: getenv(EnvAccountSID), AuthToken: getenv(EnvAuthToken), From: getenv(EnvFrom), BaseURL: getenv(EnvBaseURL)}
	return cfg, cfg.AccountSID != ""
}

// envPrefix starts every variable of a Twilio account; the second and
// third accounts read ONCEFLOW_TWILIO_2_... and ONCEFLOW_TWILIO_3_...
const envPrefix = "ONCEFLOW_TWILIO_"

// ConfigsFromEnv reads the Twilio accounts in the order they are tried:
// ONCEFLOW_TWILIO_..., then ONCEFLOW_TWILIO_2_... and ONCEFLOW_TWILIO_3_...
func ConfigsFromEnv(getenv func(string) string) []Config {
	return providers.NumberedConfigs(getenv, envPrefix, ConfigFromEnv)
}

// Sender sends SMS through one Twilio account.
type Sender struct {
	cfg    Config
	client *http.Client
}

// New checks cfg and returns a Sender. Errors name the variable at fault.
func New(cfg Config) (*Sender, error) {
	switch {
	case cfg.AccountSID == "":
		return nil, fmt.Errorf("sms: %s is empty", EnvAccountSID)
	case cfg.AuthToken == "":
		return nil, fmt.Errorf("sms: %s is empty", EnvAuthToken)
	case cfg.From == "":
		return nil, fmt.Errorf("sms: %s is empty; set the sender number or messaging service SID", EnvFrom)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if u, err := url.Parse(cfg.BaseURL); err != nil || u.Host == "" {
		return nil, fmt.Errorf("sms: %s=%q is not an absolute URL", EnvBaseURL, cfg.BaseURL)
	}
	return &Sender{cfg: cfg, client: providers.NewHTTPClient()}, nil
}

// messagingServiceSID is the form of a Messaging Service SID; any other
// sender (a number, a short code, an alphanumeric sender ID such as
// "MGM Resort") is a From.
var messagingServiceSID = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)

// viaService says whether the sender is a Messaging Service.
func (s *Sender) viaService() bool { return messagingServiceSID.MatchString(s.cfg.From) }

func (s *Sender) messagesURL() string {
	return strings.TrimRight(s.cfg.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(s.cfg.AccountSID) + "/Messages.json"
}

// api is the Messages API as DoHTTP calls it.
var api = providers.API{Name: "sms", Receiver: providers.Unkeyed, Detail: twilioError}

// Send texts m.Body to the number in m.To. Every failure is a
// *providers.Error.
func (s *Sender) Send(ctx context.Context, m providers.Message) (providers.Receipt, error) {
	form := url.Values{"To": {m.To}, "Body": {m.Body}}
	if s.viaService() {
		form.Set("MessagingServiceSid", s.cfg.From)
	} else {
		form.Set("From", s.cfg.From)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.messagesURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return providers.Receipt{}, &providers.Error{Permanent: true, Err: fmt.Errorf("sms: %w", err)}
	}
	s.authorize(req)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := providers.DoHTTP(s.client, req, api)
	if err != nil {
		return providers.Receipt{}, classify(resp.Body, err)
	}
	var msg struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(resp.Body, &msg); err != nil || msg.SID == "" {
		// Accepted, but the receipt is unreadable: still sent.
		return providers.Receipt{ID: "HTTP " + strconv.Itoa(resp.Status)}, nil
	}
	return providers.Receipt{ID: msg.SID}, nil
}

func (s *Sender) authorize(req *http.Request) {
	req.SetBasicAuth(s.cfg.AccountSID, s.cfg.AuthToken)
	req.Header.Set("Accept", "application/json")
}
