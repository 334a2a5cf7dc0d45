package main

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/rehabrtc/rehabrtc/internal/ehrc"
)

// consultations builds the EHRC-compatible consultation API: its REST
// routes, its Socket.IO endpoint and its native WebSocket (docs/ehrc.md).
// Rooms promoted by their doctor are recorded through the session manager.
func (s *server) consultations() *ehrc.Service {
	ice, _ := json.Marshal(s.cfg.RehabRTC.ICEServers) // marshalled once already by newServer
	return ehrc.New(ehrc.Config{
		APIKeys:    s.apiKeys,
		Sessions:   s.mgr,
		ICEServers: ice,
		Counters:   s.counters,
		Logger:     s.log.With("component", "ehrc"),
	})
}

// withConsultations routes the EHRC paths of the service port (the same
// ones the gateway mounts) to c, and everything else to api.
func withConsultations(api http.Handler, c *ehrc.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ehrc.IsRoute(r.URL.Path) {
			c.Handler().ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// closeConsultations disconnects every consultation client and stops the
// recordings of their rooms.
func (s *server) closeConsultations(ctx context.Context, c *ehrc.Service) {
	if err := c.Close(ctx); err != nil {
		s.log.Warn("consultations did not close cleanly", "err", err)
	}
}
