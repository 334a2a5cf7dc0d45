package opentera

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// BackendTimeout bounds each request to the main server, as OpenTera's
// requests calls do.
const BackendTimeout = 10 * time.Second

// The main server's service API (spec §4.7).
const (
	pathSessions     = "/api/service/sessions"
	pathEvents       = "/api/service/sessions/events"
	pathParticipants = "/api/service/participants"
	pathSessionTypes = "/api/service/sessiontypes"
)

// BackendConfig wires a Backend.
type BackendConfig struct {
	Host      string         // Backend.hostname
	Port      int            // Backend.port
	VerifyTLS bool           // Backend.verify_tls; false only for self-signed development certificates
	RootCAs   *x509.CertPool // CAs trusted for the main server; nil = the system's (see LoadCAFile)
	Tokens    TokenSource
	Logger    *slog.Logger
	// Client replaces the HTTP client built from VerifyTLS (tests trust
	// their own CA with it). Its Timeout is set to BackendTimeout if zero.
	Client *http.Client
}

// Backend calls OpenTera's main server over HTTPS with the service JWT
// (Authorization: OpenTera <jwt>). A 401 drops the token, mints a new one
// and retries once: the main server regenerates the token secret at each
// restart.
type Backend struct {
	base   string
	addr   string      // host:port
	tls    *tls.Config // what the client verifies the main server with
	client *http.Client
	tokens TokenSource
	log    *slog.Logger
}

// NewBackend returns a client of https://{Host}:{Port}.
func NewBackend(cfg BackendConfig) *Backend {
	client := cfg.Client
	var tc *tls.Config
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tc = &tls.Config{InsecureSkipVerify: !cfg.VerifyTLS, RootCAs: cfg.RootCAs} //nolint:gosec // explicit Backend.verify_tls=false
		tr.TLSClientConfig = tc
		client = &http.Client{Transport: tr}
	} else if tr, ok := client.Transport.(*http.Transport); ok {
		tc = tr.TLSClientConfig
	}
	if client.Timeout == 0 {
		c := *client
		c.Timeout = BackendTimeout
		client = &c
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	return &Backend{base: "https://" + addr, addr: addr, tls: tc, client: client, tokens: cfg.Tokens, log: log}
}

// BackendError is a refusal by the main server. Body is for the logs only.
type BackendError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *BackendError) Error() string {
	return fmt.Sprintf("main server: %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// call sends one JSON request (body nil for GET) and decodes a 200 answer
// into out (nil: discard). Any other status is a *BackendError.
func (b *Backend) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := b.tokens.Token(ctx)
		if err != nil {
			return fmt.Errorf("service token: %w", err)
		}
		status, data, err := b.do(ctx, method, path, query, payload, tok)
		if err != nil {
			return err
		}
		if status == http.StatusUnauthorized && attempt == 0 {
			b.log.Info("main server refused the service token; minting a new one", "path", path)
			b.tokens.Invalidate(tok)
			continue
		}
		if status != http.StatusOK {
			return &BackendError{Method: method, Path: path, Status: status, Body: truncate(string(data), 200)}
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("main server: %s %s: decode answer: %w", method, path, err)
		}
		return nil
	}
}

func (b *Backend) do(ctx context.Context, method, path string, query url.Values, payload []byte, tok string) (int, []byte, error) {
	u := b.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "OpenTera "+tok)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("main server: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("main server: %s %s: read answer: %w", method, path, err)
	}
	return resp.StatusCode, data, nil
}

// Participant returns the main server's JSON about one participant
// (GET /api/service/participants?participant_uuid=).
func (b *Backend) Participant(ctx context.Context, uuid string) (json.RawMessage, error) {
	var out json.RawMessage
	err := b.call(ctx, http.MethodGet, pathParticipants, url.Values{"participant_uuid": {uuid}}, nil, &out)
	return out, err
}

// SessionTypeConfig returns the configuration of one session type
// (GET /api/service/sessiontypes?id_session_type=: its
// session_type_config, a JSON text OpenTera keeps per type), or nil when
// the type has none or it is not a JSON object.
func (b *Backend) SessionTypeConfig(ctx context.Context, typeID int64) (json.RawMessage, error) {
	var types []struct {
		ID     int64           `json:"id_session_type"`
		Config json.RawMessage `json:"session_type_config"`
	}
	err := b.call(ctx, http.MethodGet, pathSessionTypes, url.Values{"id_session_type": {strconv.FormatInt(typeID, 10)}}, nil, &types)
	if err != nil {
		return nil, err
	}
	for _, t := range types {
		if t.ID != typeID {
			continue
		}
		var text string // a String column: JSON inside a JSON string
		if json.Unmarshal(t.Config, &text) != nil {
			text = string(t.Config) // or, from a newer server, the object itself
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(text), &obj) != nil {
			return nil, nil
		}
		return json.RawMessage(text), nil
	}
	return nil, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
