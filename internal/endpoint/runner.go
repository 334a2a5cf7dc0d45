package endpoint

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Runner runs session endpoints in this process, each also listening on its
// own port (loopback by default) for deployments that keep OpenTera's nginx.
type Runner struct {
	Bind    string // address the session listeners bind to; "" = no listener
	Options Options
}

var _ session.Runner = (*Runner)(nil)

// Start builds the endpoint and, when Bind is set, its listener.
func (r *Runner) Start(ctx context.Context, spec session.RunSpec) (session.Endpoint, error) {
	e := New(spec, r.Options)
	re := &running{Endpoint: e}
	if r.Bind == "" {
		return re, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(r.Bind, strconv.Itoa(spec.Port)))
	if err != nil {
		return nil, fmt.Errorf("session %d listener: %w", spec.SessionID, err)
	}
	re.srv = &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second}
	re.wg.Go(func() {
		if err := re.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("session listener failed", "err", err)
		}
	})
	return re, nil
}

// running is an in-process endpoint with its optional listener.
type running struct {
	*Endpoint
	srv *http.Server
	wg  sync.WaitGroup // the listener's Serve goroutine
}

// Stop ends the hub first (peers get their notice), then the listener.
func (re *running) Stop(ctx context.Context, why session.StopReason) error {
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
