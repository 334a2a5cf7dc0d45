package endpoint

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/rehabrtc/rehabrtc/internal/httpserver"
	"github.com/rehabrtc/rehabrtc/internal/routes"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Runner runs session endpoints in this process, each also listening on its
// own port (loopback by default) for deployments that keep OpenTera's nginx.
// It keeps the port→handler table the gateway reads (Handler).
type Runner struct {
	Bind    string // address the session listeners bind to; "" = no listener
	Options Options

	routes routes.Table
}

var _ session.Runner = (*Runner)(nil)

// Start builds the endpoint and, when Bind is set, its listener, then
// routes the session's port to it.
func (r *Runner) Start(ctx context.Context, spec session.RunSpec) (session.Endpoint, error) {
	e := New(spec, r.Options)
	re := &running{Endpoint: e}
	if r.Bind != "" {
		ln, err := net.Listen("tcp", net.JoinHostPort(r.Bind, strconv.Itoa(spec.Port)))
		if err != nil {
			e.Close(ctx, session.StopEnded)
			return nil, fmt.Errorf("session %d listener: %w", spec.SessionID, err)
		}
		re.srv = httpserver.New(e.Handler(), httpserver.Defaults())
		re.wg.Go(func() {
			if err := re.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				e.log.Error("session listener failed", logKeyErr, err)
			}
		})
	}
	re.unroute = r.routes.Add(spec.Port, e.Handler())
	return re, nil
}

// Handler returns the handler of the session on port, for the gateway.
func (r *Runner) Handler(port int) (http.Handler, bool) { return r.routes.Handler(port) }

// running is an in-process endpoint with its optional listener.
type running struct {
	*Endpoint
	srv     *http.Server
	wg      sync.WaitGroup // the listener's Serve goroutine
	unroute func()
}

// Ready is closed: an in-process endpoint answers once Start returns.
func (re *running) Ready() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Done is nil: an in-process endpoint ends only through Stop.
func (re *running) Done() <-chan struct{} { return nil }

// Err is nil: see Done.
func (re *running) Err() error { return nil }

// Stop takes the route down (new requests get the "no session" answer),
// ends the hub (peers get their notice), then the listener.
func (re *running) Stop(ctx context.Context, why session.StopReason) error {
	re.unroute()
	err := re.Close(ctx, why)
	if re.srv != nil {
		if serr := re.srv.Shutdown(ctx); serr != nil {
			re.srv.Close()
			err = errors.Join(err, serr)
		}
		re.wg.Wait()
	}
	return err
}
