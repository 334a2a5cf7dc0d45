package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/cluster"
	"github.com/rehabrtc/rehabrtc/internal/ehrc"
	"github.com/rehabrtc/rehabrtc/internal/gateway"
)

// startConsultations starts the consultation service (EHRC API). One node:
// built here, kept until stop. A cluster node: one node at a time holds
// cluster.ConsultLease and serves every namespace from the records in
// Redis; the others' gateways proxy the consultation routes to it
// (docs/scale-out.md). public serves the routes on the gateway and the
// service port; internal, on the internal listener, serves this node's own
// service only (never a second hop); nil without a cluster.
func (s *server) startConsultations(ctx context.Context) (public, internal http.Handler, stop func(context.Context), err error) {
	if s.cl == nil {
		c, err := s.consultations(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		return c.Handler(), nil, func(ctx context.Context) { s.closeConsultations(ctx, c) }, nil
	}
	sw := &consultSwitch{homes: s.cl.homes, proxied: &s.cl.stats.consultProxied}
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.consultLoop(lctx, sw) })
	return sw, sw.local(), func(context.Context) { cancel(); wg.Wait() }, nil
}

// consultSwitch routes the consultation paths of a cluster node: to its
// own service while it holds the consultation lease, else to the node
// that does.
type consultSwitch struct {
	cur     atomic.Pointer[ehrc.Service]
	homes   *cluster.Homes
	proxied *gateway.ProxyCounts
}

func (sw *consultSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c := sw.cur.Load(); c != nil {
		c.Handler().ServeHTTP(w, r)
		return
	}
	addr, _, err := sw.homes.Holder(r.Context(), cluster.ConsultLease)
	if err != nil || addr == "" {
		consultMoving(w)
		return
	}
	sw.proxied.Count(r)
	target := &url.URL{Scheme: "http", Host: addr}
	(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.SetXForwarded()
	}, ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { consultMoving(w) }}).ServeHTTP(w, r)
}

// local serves this node's own service, or says the consultations are
// moving: what another node's proxy reaches.
func (sw *consultSwitch) local() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := sw.cur.Load(); c != nil {
			c.Handler().ServeHTTP(w, r)
			return
		}
		consultMoving(w)
	})
}

// consultMoving is the answer while no live node serves the consultations
// (the holder was lost and another has not taken over yet), in EHRC's
// error shape: apps retry, Socket.IO clients reconnect.
func consultMoving(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"status":503,"msg":"consultations are moving to another server, try again in a moment"}`))
}

// consultLoop takes the consultation lease whenever nobody holds it (every
// third of the lease time) and serves the consultations while it holds it,
// until ctx ends or the node is lost.
func (s *server) consultLoop(ctx context.Context, sw *consultSwitch) {
	log := s.log.With(logKeyComponent, "ehrc")
	t := time.NewTicker(s.cl.node.LeaseTime() / 3)
	defer t.Stop()
	for {
		s.holdConsultations(ctx, sw, log)
		select {
		case <-ctx.Done():
			return
		case <-s.cl.node.Lost():
			return
		case <-t.C:
		}
	}
}

// holdConsultations serves the consultations for as long as this node
// holds their lease; it returns at once when another node holds it.
func (s *server) holdConsultations(ctx context.Context, sw *consultSwitch, log *slog.Logger) {
	l, err := s.cl.node.Acquire(ctx, cluster.ConsultLease)
	if err != nil {
		if !errors.Is(err, cluster.ErrHeld) && ctx.Err() == nil {
			log.Warn("cannot take the consultation lease", logKeyErr, err)
		}
		return
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = l.Release(rctx) // compare and delete: nothing if another node has it
	}()
	c, err := s.consultations(ctx)
	if err != nil {
		log.Error("cannot serve the consultations", logKeyErr, err)
		return
	}
	sw.cur.Store(c)
	s.cl.stats.consultServed.Store(true)
	defer s.cl.stats.consultServed.Store(false)
	log.Info("this node serves the consultations")
	select {
	case <-ctx.Done():
	case <-l.Lost():
		log.Warn("consultation lease lost: this node stops serving the consultations", logKeyErr, l.Err())
	}
	sw.cur.Store(nil)
	s.turn.consult.CompareAndSwap(c, nil) // its members' TURN credentials end with it
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	s.closeConsultations(cctx, c)
}

// consultStore is where the namespaces and rooms are kept: the embedded
// store, or on a cluster node Redis (every node restores them when it
// takes the consultation lease).
func (s *server) consultStore() ehrc.Store {
	if s.cl != nil {
		return s.cl.store.Tree("ehrc")
	}
	return s.store.Tree("ehrc")
}
