package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/ehrc"
)

// consultations builds the EHRC-compatible consultation API: its REST
// routes, its Socket.IO endpoint and its native WebSocket (docs/ehrc.md),
// with the namespaces and rooms kept in the store (consultStore). Rooms promoted
// by their doctor are recorded through the session manager.
func (s *server) consultations(ctx context.Context) (*ehrc.Service, error) {
	ice, _ := json.Marshal(s.cfg.RehabRTC.ICEServers) // marshalled once already by newServer
	ec := s.cfg.RehabRTC.EHRC
	log := s.log.With(logKeyComponent, "ehrc")
	c := ehrc.New(ehrc.Config{
		APIKeys:        s.apiKeys,
		Keys:           s.keys,
		Sessions:       s.mgr,
		ICEServers:     ice,
		ICE:            consultICE{s.turn.ice},
		Counters:       s.counters,
		Logger:         log,
		AllowedOrigins: ec.AllowedOrigins,
		Compat:         ehrc.Compat{Enabled: ec.Compat.Enabled, TrustedBackends: ec.TrustedPrefixes()},
		Store:          s.consultStore(),
		ClientAddress:  s.clients.String,
	})
	s.turn.consult.Store(c) // the TURN server now accepts consultation members' credentials
	nss, rooms, err := c.Restore(ctx)
	if err != nil {
		_ = c.Close(ctx)
		return nil, err
	}
	if nss > 0 {
		log.Info("consultations restored", "namespaces", nss, "rooms", rooms)
	}
	if ec.Compat.Enabled {
		warnCompat(log, ec)
	}
	return c, nil
}

// warnCompat says, once at start-up, what compatibility mode weakens.
func warnCompat(log *slog.Logger, ec config.EHRC) {
	log.Warn("EHRC compatibility mode is on: weaker than token authentication",
		"keyless_namespaces_from", strings.Join(ec.Compat.TrustedBackends, ","),
		"tokenless_doctors_from", strings.Join(ec.AllowedOrigins, ","),
		"risk", "anyone able to send requests from those addresses can create and remove namespaces; "+
			"any connection presenting one of those origins (a header non-browser clients can forge) can act as the doctor "+
			"of a namespace whose doctor is not connected with the token")
}

// closeConsultations disconnects every consultation client and stops the
// recordings of their rooms.
func (s *server) closeConsultations(ctx context.Context, c *ehrc.Service) {
	if err := c.Close(ctx); err != nil {
		s.log.Warn("consultations did not close cleanly", logKeyErr, err)
	}
}
