package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/ehrc"
	"github.com/rehabrtc/rehabrtc/internal/relay"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// turnSetup is the TURN side of the service (docs/network.md): the ICE
// servers handed to each admitted peer and, when enabled, the embedded
// TURN server, which serve owns (started before the listeners, closed after
// them).
type turnSetup struct {
	ice      *relay.ICE
	srv      *relay.Server // nil: embedded TURN disabled, or not started yet
	counters *relay.Counters
	// consult answers for consultation members (credentials with a
	// negative session); set once the consultation service exists, after
	// the server started: until then their credentials are refused.
	consult atomic.Pointer[ehrc.Service]
}

// newTURN prepares the credentials; the server starts in start.
func newTURN(cfg *config.Config) *turnSetup {
	t := cfg.RehabRTC.TURN
	ttl := time.Duration(t.CredentialTTL) * time.Second
	ice := &relay.ICE{}
	for _, s := range cfg.RehabRTC.ICEServers {
		ice.Static = append(ice.Static, relay.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	if len(t.External.URLs) > 0 {
		ice.External, ice.ExternalURLs = relay.NewRESTMinter(t.External.Secret, ttl), t.External.URLs
	}
	if t.Enabled {
		ice.Embedded = relay.NewMinter(ttl)
	}
	return &turnSetup{ice: ice, counters: &relay.Counters{}}
}

// start runs the embedded server (if enabled) against the live roster,
// and sets the URLs browsers get for it.
func (ts *turnSetup) start(ctx context.Context, cfg *config.Config, mgr *session.Manager, log *slog.Logger) error {
	t := cfg.RehabRTC.TURN
	if !t.Enabled {
		return nil
	}
	relayIP := t.RelayIP
	if relayIP == "" && cfg.RehabRTC.Cluster.Enabled { // a cluster node's own address
		a, err := mediaIP(cfg)
		if err != nil {
			return err
		}
		relayIP = a.String()
	}
	ip, err := relay.RelayIP(ctx, relayIP, cfg.WebRTC.Hostname)
	if err != nil {
		return err
	}
	var allow []netip.Prefix
	for _, p := range t.AllowPeers {
		allow = append(allow, netip.MustParsePrefix(p)) // validated by config
	}
	rc := relay.Config{
		Listen: t.Listen, RelayIP: ip, RelayBind: t.RelayBind, PortMin: t.RelayPortMin, PortMax: t.RelayPortMax,
		Realm: t.Realm, Minter: ts.ice.Embedded, Roster: roster{mgr, &ts.consult}, Allow: allow,
		MaxPerPeer: t.MaxPerPeer, MaxPerSession: t.MaxPerSession, MaxLifetime: time.Duration(t.MaxLifetime) * time.Second,
		ReadLoops: t.ReadLoops, SocketBuffer: t.SocketBuffer, SharedTLS: sharesTLS(cfg),
		Counters: ts.counters, Logger: log.With("component", "turn"),
	}
	if t.TLSListen != "" {
		certFile, keyFile := t.TLSCert, t.TLSKey
		if certFile == "" {
			certFile, keyFile = cfg.RehabRTC.Gateway.TLSCert, cfg.RehabRTC.Gateway.TLSKey
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("RehabRTC.turn.tls_listen certificate: %w", err)
		}
		rc.TLSListen, rc.TLS = t.TLSListen, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := relay.New(rc)
	if err != nil {
		return fmt.Errorf("TURN: %w", err)
	}
	ts.srv = srv
	port := t.Port
	if port == 0 {
		port = srv.Port()
	}
	var tlsPorts []int
	if sharesTLS(cfg) {
		tlsPorts = append(tlsPorts, cfg.WebRTC.ExternalPort)
	}
	if a := srv.TLSAddr(); a != nil {
		tlsPorts = append(tlsPorts, a.(*net.TCPAddr).Port)
	}
	ts.ice.EmbeddedURLs = relay.URLs(cfg.MediaHost(), port, tlsPorts...)
	log.Info("TURN server ready", "listen", srv.Addr().String(), "relay_ip", ip.String(),
		"relay_ports", strconv.Itoa(t.RelayPortMin)+"-"+strconv.Itoa(t.RelayPortMax), "urls", ts.ice.EmbeddedURLs)
	return nil
}

// sharesTLS: TURN over TLS on the gateway's HTTPS port.
func sharesTLS(cfg *config.Config) bool {
	t := cfg.RehabRTC.TURN
	return t.Enabled && t.GatewayTLS && cfg.RehabRTC.Gateway.Enabled && cfg.GatewayTLS()
}

func (ts *turnSetup) close(log *slog.Logger) {
	if ts.srv == nil {
		return
	}
	if err := ts.srv.Close(); err != nil {
		log.Warn("TURN server close", "err", err)
	}
}

// peerICE hands out the ICE servers of an admitted peer, for the endpoints.
type peerICE struct{ ice *relay.ICE }

func (p peerICE) ICEServers(sessionID int64, id session.Identity) (json.RawMessage, time.Time) {
	return p.ice.For(relay.Peer{Session: sessionID, Kind: string(id.Kind), UUID: id.UUID})
}

func (p peerICE) Policy() string { return p.ice.Policy() }

// consultICE hands out the ICE servers of a consultation member, for
// the EHRC service: its office's number, negated, is the credential's
// session (relay.Peer).
type consultICE struct{ ice *relay.ICE }

func (c consultICE) ICEServers(office int64, kind, id string) (json.RawMessage, time.Time) {
	return c.ice.For(relay.Peer{Session: -office, Kind: kind, UUID: id})
}

func (c consultICE) Policy() string { return c.ice.Policy() }

// roster answers the TURN server from the session Manager, and for
// consultation members from the EHRC service.
type roster struct {
	m       *session.Manager
	consult *atomic.Pointer[ehrc.Service]
}

func (r roster) Admitted(p relay.Peer) bool {
	if p.Session < 0 {
		c := r.consult.Load()
		return c != nil && c.Admitted(-p.Session, p.Kind, p.UUID)
	}
	return r.m.Admitted(p.Session, session.Identity{Kind: session.Kind(p.Kind), UUID: p.UUID})
}

// collectors are the TURN metrics.
func (ts *turnSetup) collectors() []prometheus.Collector {
	c := ts.counters
	counter := func(name, help string, v func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v()) })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rehabrtc_turn_allocations", Help: "TURN allocations live now."},
			func() float64 { return float64(c.Allocations.Load()) }),
		counter("rehabrtc_turn_allocations_total", "TURN allocations made.", c.AllocationsTotal.Load),
		counter("rehabrtc_turn_relayed_bytes_to_peers_total", "Bytes the TURN relay sent to peers.", c.BytesToPeers.Load),
		counter("rehabrtc_turn_relayed_bytes_from_peers_total", "Bytes the TURN relay received from permitted peers.", c.BytesFromPeers.Load),
		counter("rehabrtc_turn_auth_failures_total", "TURN requests refused for their credentials.", c.AuthFailures.Load),
		counter("rehabrtc_turn_permissions_denied_total", "TURN permissions refused (loopback, private… peers) and packets dropped to non-relay ports of the relay host.", c.PermissionsDenied.Load),
		counter("rehabrtc_turn_quota_refused_total", "TURN allocations refused by a quota.", c.QuotaRefused.Load),
		counter("rehabrtc_turn_revoked_total", "TURN allocations closed because their peer left the session or lived too long.", c.Revoked.Load),
	}
}
