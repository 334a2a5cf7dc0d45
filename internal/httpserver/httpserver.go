// Package httpserver builds every http.Server of rehabrtc with the same
// bounds: how long a client may take to send its headers and its body, how
// big they may be, how long an idle keep-alive connection stays. A client
// that sends one byte every few seconds cannot hold a connection, a
// goroutine and a buffer for minutes.
package httpserver

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limits bound requests. Zero fields take the defaults of [Defaults].
type Limits struct {
	ReadHeader time.Duration // the request line and headers
	Body       time.Duration // the whole body, from the end of the headers
	MaxBody    int64         // bytes of body; handlers may bound lower
	MaxHeader  int           // bytes of request line and headers
	Idle       time.Duration // a keep-alive connection between requests
}

// Defaults: headers in 10 s, a body in 30 s and at most 1 MiB, 64 KiB of
// headers, 2 minutes idle. A function, not a variable, so that no caller can
// change every server's defaults.
func Defaults() Limits {
	return Limits{ReadHeader: 10 * time.Second, Body: 30 * time.Second, MaxBody: 1 << 20, MaxHeader: 64 << 10, Idle: 2 * time.Minute}
}

func (l Limits) withDefaults() Limits {
	d := Defaults()
	if l.ReadHeader <= 0 {
		l.ReadHeader = d.ReadHeader
	}
	if l.Body <= 0 {
		l.Body = d.Body
	}
	if l.MaxBody <= 0 {
		l.MaxBody = d.MaxBody
	}
	if l.MaxHeader <= 0 {
		l.MaxHeader = d.MaxHeader
	}
	if l.Idle <= 0 {
		l.Idle = d.Idle
	}
	return l
}

// New returns a server for h with the limits l.
//
// Server.ReadTimeout is not used: it would also cut long-poll and
// WebSocket connections (a hijacked connection keeps its deadline) and
// cancel the context of any handler still running when it expires. The
// body deadline is set per request instead, and lifted once the body is
// read.
func New(h http.Handler, l Limits) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler:           BoundBodies(h, l.MaxBody, l.Body),
		ReadHeaderTimeout: l.ReadHeader,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.MaxHeader,
	}
}

// BoundBodies bounds each request body of next to max bytes, which must
// arrive within timeout after the headers. A body announced larger than
// max gets 413 at once; one that turns out larger fails the handler's read
// (http.MaxBytesError); one that comes too slowly fails the read with a
// timeout and the connection is closed.
func BoundBodies(next http.Handler, max int64, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			http.Error(w, "request body over "+strconv.FormatInt(max, 10)+" bytes", http.StatusRequestEntityTooLarge)
			return
		}
		rc := http.NewResponseController(w)
		b := &body{ReadCloser: http.MaxBytesReader(w, r.Body, max)}
		// A writer without deadlines (a test recorder) just gets none.
		if rc.SetReadDeadline(time.Now().Add(timeout)) == nil {
			b.lift = func() { _ = rc.SetReadDeadline(time.Time{}) }
		}
		r2 := *r
		r2.Body = b
		next.ServeHTTP(w, &r2)
	})
}

// body lifts the read deadline once the body is read to its end, so that
// a handler that takes long after reading (a session start) keeps its
// connection and context.
type body struct {
	io.ReadCloser
	once sync.Once
	lift func()
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && b.lift != nil {
		b.once.Do(b.lift)
	}
	return n, err
}
