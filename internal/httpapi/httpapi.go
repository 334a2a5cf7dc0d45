// Package httpapi is the service's HTTP face: the session_manage API
// (OpenTera's body, bearer API key), session listing, health, readiness,
// metrics and the clinician dashboard.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/apikey"
	"github.com/rehabrtc/rehabrtc/internal/feed"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/web"
)

// Sessions is what the API needs from the session manager.
type Sessions interface {
	Manage(ctx context.Context, req *session.Request) (*session.Reply, error)
	Get(ctx context.Context, id int64) (*session.View, error)
	List(ctx context.Context, runningOnly bool) ([]*session.View, error)
	Forget(ctx context.Context, id int64) (*session.View, error)
}

// Events is where the live event stream subscribes (a *feed.Broker).
type Events interface {
	Subscribe() (*feed.Subscription, error)
}

// Config wires an API.
type Config struct {
	Sessions Sessions
	APIKeys  []string
	Keys     *apikey.Guard // checks the keys and backs off guessers; nil = one over APIKeys
	Metrics  http.Handler  // nil: no /metrics
	Ready    func() error  // nil: always ready
	// Backup writes a consistent snapshot of the store (bbolt's
	// tx.WriteTo); nil: no GET /api/store/backup.
	Backup func(w io.Writer) (int64, error)
	Logger *slog.Logger
	Events Events // nil: no /api/events
	// Heartbeat is how often an idle event stream sends a comment, so
	// proxies keep it open and a dead client is noticed (0: 15 s).
	Heartbeat time.Duration
}

// maxBody bounds request bodies: session_manage bodies are small.
const maxBody = 1 << 20

type api struct {
	cfg  Config
	keys *apikey.Guard
	log  *slog.Logger
}

// New returns the service handler. Paths are relative to the service root;
// the gateway mounts it under /rehab/.
func New(cfg Config) http.Handler {
	a := &api{cfg: cfg, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.keys = cfg.Keys; a.keys == nil {
		a.keys = apikey.New(cfg.APIKeys, apikey.Limits{}, nil)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/sessions/manager", a.authed(a.manage))
	mux.Handle("GET /api/sessions", a.authed(a.list))
	mux.Handle("GET /api/sessions/{id}", a.authed(a.get))
	if cfg.Backup != nil {
		mux.Handle("GET /api/store/backup", a.authed(a.backup))
	}
	mux.Handle("DELETE /api/sessions/{id}/personal-data", a.authed(a.forget))
	mux.Handle("GET /api/events", a.authed(a.events))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.ready)
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(web.DashboardPage())
	})
	mux.Handle("GET /static/", http.StripPrefix("/static", web.StaticHandler()))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API route")
	})
	return web.SecurityHeaders(mux)
}

// Error is an HTTP error with a public face: Text is shown, Err is logged.
type Error struct {
	Status int
	Text   string
	Err    error
}

func (e *Error) Error() string { return e.Text }
func (e *Error) Unwrap() error { return e.Err }

// authed checks the bearer API key (constant time; an address that sent
// too many wrong keys waits) before h runs, and turns the error h returns
// into a JSON error reply.
func (a *api) authed(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch v, retry := a.keys.Check(r); v {
		case apikey.Blocked:
			w.Header().Set("Retry-After", apikey.RetryAfter(retry))
			writeError(w, http.StatusTooManyRequests, "too many wrong API keys from this address: retry after "+apikey.RetryAfter(retry)+" s")
			return
		case apikey.Missing, apikey.Wrong:
			w.Header().Set("WWW-Authenticate", `Bearer realm="rehabrtc"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong API key")
			return
		}
		if err := h(w, r); err != nil {
			a.fail(w, r, err)
		}
	})
}

// fail maps any error to its status and public text, in one place.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, text := http.StatusInternalServerError, "internal error"
	var he *Error
	var se *session.Error
	switch {
	case errors.As(err, &he):
		status, text = he.Status, he.Text
	case errors.As(err, &se):
		code, t := session.PublicError(se)
		status, text = statusOf(code), t
	}
	if status >= 500 {
		a.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "status", status, "err", err)
	} else {
		a.log.InfoContext(r.Context(), "request refused", "path", r.URL.Path, "status", status, "reason", text)
	}
	writeError(w, status, text)
}

func statusOf(c session.Code) int {
	switch c {
	case session.CodeBadRequest:
		return http.StatusBadRequest
	case session.CodeNotFound:
		return http.StatusNotFound
	case session.CodeUnavailable:
		return http.StatusServiceUnavailable
	case session.CodeForbidden:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

func (a *api) manage(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Text: "request body over 1 MiB"}
		}
		return &Error{Status: http.StatusBadRequest, Text: "cannot read request body", Err: err}
	}
	req, err := session.ParseManage(body)
	if err != nil {
		return err
	}
	reply, err := a.cfg.Sessions.Manage(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, reply)
	return nil
}

func (a *api) list(w http.ResponseWriter, r *http.Request) error {
	running := false
	switch r.URL.Query().Get("status") {
	case "", "all":
	case "running":
		running = true
	default:
		return &Error{Status: http.StatusBadRequest, Text: "status: must be running or all"}
	}
	views, err := a.cfg.Sessions.List(r.Context(), running)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": views})
	return nil
}

func sessionID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &Error{Status: http.StatusBadRequest, Text: "session id: must be a positive integer"}
	}
	return id, nil
}

func (a *api) get(w http.ResponseWriter, r *http.Request) error {
	id, err := sessionID(r)
	if err != nil {
		return err
	}
	v, err := a.cfg.Sessions.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// backup streams the store: the online half of "rehabrtc store backup",
// which checks what it received before keeping it. An error once bytes
// are out can only cut the stream short.
func (a *api) backup(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="rehabrtc-backup.db"`)
	w.Header().Set("Cache-Control", "no-store")
	n, err := a.cfg.Backup(w)
	if err != nil && n == 0 {
		return err
	}
	if err != nil {
		a.log.ErrorContext(r.Context(), "store backup cut short", "bytes", n, "err", err)
	}
	return nil
}

// forget deletes the names of a stopped session now (docs/security.md).
func (a *api) forget(w http.ResponseWriter, r *http.Request) error {
	id, err := sessionID(r)
	if err != nil {
		return err
	}
	v, err := a.cfg.Sessions.Forget(r.Context(), id)
	if err != nil {
		return err
	}
	a.log.InfoContext(r.Context(), "personal data of a session deleted on request", "session", id)
	writeJSON(w, http.StatusOK, v)
	return nil
}

// streamWriteTimeout bounds one write of the event stream: a client that
// does not read is dropped rather than holding a goroutine.
const streamWriteTimeout = 10 * time.Second

// events is the dashboards' live stream (Server-Sent Events): "hello" once
// subscribed, then one "data:" line per change (feed.Event: what changed,
// never who), and a comment when idle. It ends when the client goes, the
// broker closes (shutdown) or the client falls too far behind; the
// dashboard then reconnects and reads the sessions again.
func (a *api) events(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Events == nil {
		return &Error{Status: http.StatusNotFound, Text: "no event stream"}
	}
	sub, err := a.cfg.Events.Subscribe()
	if err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Text: "service is shutting down", Err: err}
	}
	defer sub.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) // not every writer supports it
		if _, err := io.WriteString(w, s); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("retry: 1000\nevent: hello\ndata: {}\n\n") {
		return nil
	}
	beat := a.cfg.Heartbeat
	if beat <= 0 {
		beat = 15 * time.Second
	}
	tick := time.NewTicker(beat)
	defer tick.Stop()
	for {
		var msg string
		select {
		case <-r.Context().Done():
			return nil
		case e, ok := <-sub.C:
			if !ok {
				return nil
			}
			data, _ := json.Marshal(e)
			msg = "data: " + string(data) + "\n\n"
		case <-tick.C:
			msg = ": ping\n\n"
		}
		if !send(msg) {
			return nil
		}
	}
}

func (a *api) ready(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Ready != nil {
		if err := a.cfg.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeError(w http.ResponseWriter, status int, text string) {
	writeJSON(w, status, map[string]string{"status": "error", "error_text": text})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}
