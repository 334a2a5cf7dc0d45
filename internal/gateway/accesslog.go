package gateway

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"
)

// secretParams are query parameters never written to a log. sid is an
// Engine.IO session id (/socket.io/): whoever knows it can take the session.
var secretParams = [...]string{"key", "token", "access_token", "sid"}

// RedactQuery returns the raw query with every secret value replaced.
func RedactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "(unparsable query)"
	}
	for _, p := range secretParams {
		if _, ok := q[p]; ok {
			q[p] = []string{"REDACTED"}
		}
	}
	return q.Encode()
}

// AccessLog logs every request (method, path, redacted query, status,
// duration, the TCP peer and the client) on log. client names the client
// by the service's one rule (trusted proxies' forwarded addresses), so
// that the log names the patient, not nginx. Keys in URLs never reach the
// log.
func AccessLog(log *slog.Logger, client func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.LogAttrs(r.Context(), slog.LevelInfo, "http",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("query", RedactQuery(r.URL.RawQuery)),
			slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
			slog.String("client", client(r)),
		)
	})
}

// statusWriter remembers the status; it passes Hijack and Flush through so
// WebSocket upgrades and streaming still work.
type statusWriter struct {
	http.ResponseWriter
	status  int
	written bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.written {
		s.status, s.written = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.written = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	s.status = http.StatusSwitchingProtocols
	return http.NewResponseController(s.ResponseWriter).Hijack()
}

func (s *statusWriter) Flush() {
	http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
