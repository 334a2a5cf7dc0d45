// Package endpoint is a running session's door: its pages, its status
// route and its WebSocket, in front of the session's signaling hub. The same
// endpoint serves behind the gateway (called directly, no TCP hop), behind
// nginx on the session's own port, and inside a child process.
package endpoint

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/hub"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/sfu"
	"github.com/rehabrtc/rehabrtc/internal/web"
)

// Options are the parts of an endpoint shared by every session.
type Options struct {
	ICEServers json.RawMessage // RTCIceServer list handed to peers
	Counters   *hub.Counters   // process-wide totals for /metrics; may be nil
	// Each peer's message budget (hub.Config.RateLimit, RateBurst); 0: the hub's defaults.
	RateLimit, RateBurst float64
	// ICE, if set, hands each admitted peer its own ICE servers (TURN
	// credentials bound to the invitation) instead of ICEServers.
	ICE      PeerICE
	Presence Presence // hears joins and leaves of every session; may be nil
	// ClientAddress names a WebSocket's client for the hub's per-address
	// cap (hub.Config.ClientAddress); nil: the hub's own rule.
	ClientAddress func(r *http.Request) string
	// SFU is the process's media engine; nil means no media through the
	// server (sessions in child processes): every session is mesh.
	SFU *sfu.Engine
	// MediaMode is the sessions' default ("mesh", "sfu" or "auto"; "" =
	// mesh); session_parameters.media_mode overrides it per session.
	MediaMode string
}

// Presence hears who joins and leaves a session, for the dashboards' live
// view. It is called from the peer's goroutine and must not block.
type Presence interface {
	PeerJoined(sessionID int64, p session.Peer)
	PeerLeft(sessionID int64, p session.Peer)
}

// PeerICE hands the invitee id of session sessionID its ICE servers (a
// JSON RTCIceServer list) and when their credentials expire; Policy is the
// ICE transport policy pages must use ("" or "relay", a test switch).
type PeerICE interface {
	ICEServers(sessionID int64, id session.Identity) (json.RawMessage, time.Time)
	Policy() string
}

// sessionICE is the hub's ICEProvider for one session.
type sessionICE struct {
	src PeerICE
	id  int64
}

func (s sessionICE) ICEServers(id hub.Identity) (json.RawMessage, time.Time) {
	return s.src.ICEServers(s.id, session.Identity{Kind: session.Kind(id.Role), UUID: id.UUID})
}

// Endpoint is one session's pages and hub.
type Endpoint struct {
	gate    session.Gate
	port    int
	hub     *hub.Hub
	media   *media // nil without an SFU engine
	handler http.Handler
	log     *slog.Logger
}

// New builds the endpoint of one session. It does not listen.
func New(spec session.RunSpec, opts Options) *Endpoint {
	log := spec.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Endpoint{gate: spec.Gate, port: spec.Port, log: log}
	var obs hub.Observer
	if opts.Presence != nil {
		obs = observer{id: spec.SessionID, p: opts.Presence}
	}
	var hm hub.Media
	if opts.SFU != nil {
		mode := sessionMode(spec.Parameters, spec.TypeConfig, cmp.Or(opts.MediaMode, ModeMesh), log)
		e.media = newMedia(opts.SFU, mode, spec.MediaOnSFU, spec.Media, log.With(logKeyComponent, "sfu"))
		hm = e.media
	}
	hc := hub.Config{
		Admitter:      admitter{spec.Gate},
		Observer:      obs,
		Media:         hm,
		Counters:      opts.Counters,
		ICEServers:    opts.ICEServers,
		Logger:        log,
		RateLimit:     opts.RateLimit,
		RateBurst:     opts.RateBurst,
		ClientAddress: opts.ClientAddress,
	}
	if opts.ICE != nil {
		hc.ICE, hc.ICEPolicy = sessionICE{opts.ICE, spec.SessionID}, opts.ICE.Policy()
	}
	e.hub = hub.New(hc)
	if e.media != nil {
		e.media.hub = e.hub // before anyone can join
	}
	mux := http.NewServeMux()
	for _, k := range session.Kinds {
		mux.HandleFunc("GET /"+string(k)+"s", e.page(k))
	}
	mux.HandleFunc("GET /status", e.status)
	mux.HandleFunc("GET /me", e.me)
	mux.Handle("GET /static/", http.StripPrefix("/static", web.StaticHandler()))
	mux.HandleFunc("GET /websocket/{port}/", e.websocket)
	e.handler = web.SecurityHeaders(mux)
	return e
}

// Handler serves paths relative to the session: /users, /status,
// /static/…, /websocket/{port}/ (the gateway strips /webrtc/{port}).
func (e *Endpoint) Handler() http.Handler { return e.handler }

// Kick disconnects a removed invitee.
func (e *Endpoint) Kick(id session.Identity) {
	n := e.hub.Kick(hub.Identity{Role: hub.Role(id.Kind), UUID: id.UUID})
	if n > 0 {
		e.log.Info("removed invitee disconnected", logKeyKind, id.Kind, logKeyUUID, id.UUID, logKeyConnections, n)
	}
}

// Peers lists who is connected.
func (e *Endpoint) Peers() []session.Peer {
	ps := e.hub.Peers()
	out := make([]session.Peer, len(ps))
	for i, p := range ps {
		out[i] = peerOf(p)
	}
	return out
}

func peerOf(p hub.PeerInfo) session.Peer {
	return session.Peer{ID: p.ID, Name: p.Name, UUID: p.UUID, Role: session.Kind(p.Role)}
}

// observer tells Presence about the joins and leaves of one session's hub.
type observer struct {
	id int64
	p  Presence
}

func (o observer) PeerJoined(p hub.PeerInfo) { o.p.PeerJoined(o.id, peerOf(p)) }
func (o observer) PeerLeft(p hub.PeerInfo)   { o.p.PeerLeft(o.id, peerOf(p)) }

// Close tells every peer why and waits until they are gone.
func (e *Endpoint) Close(ctx context.Context, why session.StopReason) error {
	reason := hub.SessionEnded
	if why == session.StopShutdown {
		reason = hub.ServerShutdown
	}
	if e.media != nil {
		e.media.stopping() // the peers the hub closes now are not leaving the session
	}
	err := e.hub.Close(ctx, reason)
	if e.media != nil {
		e.media.close() // after the hub: no peer can reach the router any more
	}
	return err
}

// page serves the session page of one kind to a holder of a key of that
// kind; anyone else gets the 403 page.
func (e *Endpoint) page(k session.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		id, err := e.gate.Admit(r.Context(), q.Get("key"), q.Get("uuid"))
		if err != nil || id.Kind != k {
			web.Denied(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(web.SessionPage())
	}
}

// status is OpenTera's readiness probe: 200 {"status":"OK"} for a live key.
func (e *Endpoint) status(w http.ResponseWriter, r *http.Request) {
	if !e.gate.Valid(r.Context(), r.URL.Query().Get("key")) {
		web.DeniedStatus(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(`{"status":"OK"}` + "\n"))
}

// me tells the holder of a key who they are (name, language) and who
// their therapist is, as the session knows them, so a link without names
// (OpenTera's) still greets its holder. Anyone else gets the 403 answer; a
// gate that cannot tell (a child process's) answers 404 and the page goes
// by its link alone.
func (e *Endpoint) me(w http.ResponseWriter, r *http.Request) {
	pg, ok := e.gate.(session.PersonGate)
	if !ok {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	p, err := pg.Person(r.Context(), q.Get("key"), q.Get("uuid"))
	if err != nil {
		web.DeniedStatus(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(p)
}

func (e *Endpoint) websocket(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("port") != strconv.Itoa(e.port) {
		http.NotFound(w, r)
		return
	}
	// Upgrades, counts the client address against the cap on connections
	// not yet joined, and serves in a goroutine the hub owns (Hub.Close
	// waits for it), so net/http frees the request (docs/performance.md, W3).
	e.hub.ServeHTTP(w, r)
}

// admitter lets the hub ask the session's gate without knowing tokens.
type admitter struct{ g session.Gate }

func (a admitter) Admit(ctx context.Context, key, uuid string) (hub.Identity, error) {
	id, err := a.g.Admit(ctx, key, uuid)
	if err != nil {
		return hub.Identity{}, err
	}
	return hub.Identity{Role: hub.Role(id.Kind), UUID: id.UUID}, nil
}
