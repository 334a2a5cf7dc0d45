package endpoint

import (
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/rehabrtc/rehabrtc/internal/hub"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/sfu"
)

// Media modes (config.MediaMesh…): how a session's pages carry media.
const (
	ModeMesh = "mesh" // browser to browser
	ModeSFU  = "sfu"  // through the session's router
	ModeAuto = "auto" // mesh at two people, the router from the third
)

// autoThreshold is the number of people at which an auto session moves to
// the router. Two people keep the direct path, the lowest latency there is.
const autoThreshold = 3

// typeMediaMode is the hub message that tells pages which transport to use
// (docs/protocol.md): sent after welcome, and to everyone when an auto
// session switches.
const typeMediaMode = "media-mode"

// errMeshOnly answers SFU signaling in a session that is (still) mesh.
var errMeshOnly = &sfu.Error{Code: "sfu-off", Text: "this session's media is peer to peer for now"}

// media joins a session's hub and its router: it is the hub's [hub.Media]
// and the router's [sfu.Signaler], and it decides the session's transport.
// Lock order: media.mu, then the hub's (through Send); the router is never
// called with mu held, and Signal takes no lock of ours.
type media struct {
	hub    *hub.Hub // set once, before the hub serves anyone
	router *sfu.Router
	mode   string
	rec    session.MediaRecorder // nil: nothing kept across restarts
	log    *slog.Logger

	mu       sync.Mutex // guards the fields below
	peers    map[string]struct{}
	switched bool // an auto session has moved to the router (it stays there)
	// recorded is what the record says: on the router with three or more
	// people, the state a restart resumes (session.Record.MediaOnSFU).
	recorded bool
	closing  bool // the endpoint is closing: departures are not recorded
}

var (
	_ hub.Media    = (*media)(nil)
	_ sfu.Signaler = (*media)(nil)
)

// newMedia builds the media of a session in mode. onSFU is what its record
// says (an auto session that was on the router with three or more people
// before a restart resumes there: its pages come back without meshing
// first); rec keeps that up to date.
func newMedia(e *sfu.Engine, mode string, onSFU bool, rec session.MediaRecorder, log *slog.Logger) *media {
	m := &media{mode: mode, rec: rec, log: log, peers: map[string]struct{}{}, recorded: onSFU}
	if mode == ModeAuto && onSFU { // in another mode now (configuration changed): cleared at the first join
		m.switched = true
		log.Info("media resumes on the server")
	}
	m.router = e.NewRouter(sfu.RouterConfig{Logger: log}, m)
	return m
}

// Add tells the new peer its transport (and, when an auto session crosses
// the threshold, everyone), then makes it known to the router. Every
// admitted peer is in the router, in every mode, so that a switch needs no
// second step.
func (m *media) Add(peer string) {
	m.mu.Lock()
	m.peers[peer] = struct{}{}
	switch {
	case m.mode == ModeAuto && !m.switched && len(m.peers) >= autoThreshold:
		m.switched = true
		m.log.Info("media moves to the server", logKeyPeers, len(m.peers))
		for p := range m.peers {
			m.sendMode(p, ModeSFU)
		}
	default:
		m.sendMode(peer, m.currentLocked())
	}
	m.recordLocked(true)
	m.mu.Unlock()
	if err := m.router.Add(peer); err != nil {
		m.log.Debug("media add refused", logKeyPeer, peer, logKeyErr, err)
	}
}

// Remove withdraws the peer's tracks from every page at once. An auto
// session stays on the router when people leave: moving back and forth
// would cost a renegotiation each time.
func (m *media) Remove(peer string) {
	m.mu.Lock()
	delete(m.peers, peer)
	if !m.closing { // a restart's departures are not the people's
		m.recordLocked(false)
	}
	m.mu.Unlock()
	m.router.Remove(peer)
}

// recordLocked keeps the record's media path up to date: an auto session
// on the router with three or more people resumes there after a restart;
// one down to two follows the auto rule again after a restart (mesh until
// the third). A join never clears it: after a restart the pages come back
// one by one, and until someone leaves the record stands. Only changes are
// written, in the background. m.mu must be held, so that the calls reach
// the recorder in order.
func (m *media) recordLocked(joining bool) {
	want := m.switched && len(m.peers) >= autoThreshold
	if m.rec == nil || want == m.recorded || (joining && !want && m.mode == ModeAuto) {
		return
	}
	m.recorded = want
	m.rec.MediaOnSFU(want)
}

// stopping tells the media that the endpoint closes: the peers leaving now
// go because the service stops or restarts, and the record keeps the path
// they will resume.
func (m *media) stopping() {
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
}

// Handle decodes one SFU frame of a joined peer and gives it to the
// router. Refusals go back to the page as sfu-error.
func (m *media) Handle(peer string, frame []byte) {
	m.mu.Lock()
	mode := m.currentLocked()
	m.mu.Unlock()
	var msg sfu.Message
	err := error(errMeshOnly)
	if mode == ModeSFU {
		if jerr := json.Unmarshal(frame, &msg); jerr != nil {
			err = &sfu.Error{Code: sfu.ErrBadMessage.Code, Text: sfu.ErrBadMessage.Text, Err: jerr}
		} else {
			err = m.router.Handle(peer, msg)
		}
	}
	if err != nil {
		m.refuse(peer, msg.Type, err)
	}
}

func (m *media) refuse(peer, typ string, err error) {
	var e *sfu.Error
	if !errors.As(err, &e) {
		e = &sfu.Error{Code: sfu.ErrNegotiation.Code, Text: sfu.ErrNegotiation.Text, Err: err}
	}
	m.log.Debug("media request refused", logKeyPeer, peer, logKeyType, typ, logKeyErr, err) // detail for the logs only
	m.Signal(peer, sfu.Message{Type: sfu.TypeError, Code: e.Code, Text: e.Text})
}

// Signal carries a router message to its page. It only queues.
func (m *media) Signal(peer string, msg sfu.Message) {
	b, err := json.Marshal(msg)
	if err != nil {
		m.log.Error("media message not encodable", logKeyErr, err)
		return
	}
	m.hub.Send(peer, b)
}

// currentLocked is the transport pages use now. m.mu must be held.
func (m *media) currentLocked() string {
	if m.mode == ModeSFU || m.switched {
		return ModeSFU
	}
	return ModeMesh
}

// sendMode queues {"type":"media-mode","mode":…} for peer.
func (m *media) sendMode(peer, mode string) {
	b, _ := json.Marshal(struct {
		Type string `json:"type"`
		Mode string `json:"mode"`
	}{typeMediaMode, mode})
	m.hub.Send(peer, b)
}

// Mode is the transport pages use now ("mesh" or "sfu").
func (m *media) Mode() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.currentLocked()
}

func (m *media) close() { m.router.Close() }

// sessionMode is the media mode of one session: session_parameters'
// media_mode when it is one of the modes, else the session type's
// (OpenTera's session_type_config: media_mode at its top level or in one
// of its sections), else def. Both may be any JSON (OpenTera sends what
// its users typed): anything else is ignored with a warning, never an
// error that would stop the session.
func sessionMode(params, typeConfig json.RawMessage, def string, log *slog.Logger) string {
	if m, ok := modeIn(params, "session_parameters", log); ok {
		return m
	}
	if m, ok := modeIn(typeConfig, "session_type_config", log); ok {
		return m
	}
	var sections map[string]json.RawMessage
	if json.Unmarshal(typeConfig, &sections) == nil {
		for _, name := range slices.Sorted(maps.Keys(sections)) { // one order, whatever the JSON's
			if m, ok := modeIn(sections[name], "session_type_config."+name, log); ok {
				return m
			}
		}
	}
	return def
}

// modeIn reads a valid media_mode of a JSON object.
func modeIn(raw json.RawMessage, where string, log *slog.Logger) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var p struct {
		MediaMode *string `json:"media_mode"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.MediaMode == nil {
		return "", false
	}
	switch *p.MediaMode {
	case ModeMesh, ModeSFU, ModeAuto:
		return *p.MediaMode, true
	}
	log.Warn(where+`.media_mode is not "mesh", "sfu" or "auto": ignored`, logKeyMode, *p.MediaMode)
	return "", false
}
