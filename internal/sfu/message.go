package sfu

import "github.com/pion/webrtc/v4"

// Message types of the SFU's signaling. They travel inside the session's
// authenticated WebSocket (the hub relays them between a page and its
// router); docs/architecture.md ("SFU signaling") is their contract.
const (
	// Page → server.
	TypeOffer     = "sfu-offer"     // pc "pub": the page's publish offer (Sources, Restart)
	TypeAnswer    = "sfu-answer"    // pc "sub": the answer to the server's subscribe offer
	TypeCandidate = "sfu-candidate" // a trickled ICE candidate of the page, for pc "pub" or "sub"
	TypeLayer     = "sfu-layer"     // the tile size a subscribed video track is shown at
	// Server → page. The server also sends TypeOffer (pc "sub") and
	// TypeAnswer (pc "pub"); its SDP carries its candidates (no trickle).
	TypeSpeakers = "sfu-speakers" // the active speakers changed
	TypeError    = "sfu-error"    // something the page asked for was refused, or a limit was hit
	TypeStats    = "sfu-stats"    // every 2 s: the page's link and each publisher's, as the server sees them
	TypeLayers   = "sfu-layers"   // pc "pub": which simulcast layers of a published track to send (dynacast)
)

// The two peer connections of a participant.
const (
	PCPublish   = "pub" // page offers, server answers; page → server media
	PCSubscribe = "sub" // server offers, page answers; server → page media
)

// Message is one SFU signaling message, in either direction.
type Message struct {
	Type string `json:"type"`
	PC   string `json:"pc,omitempty"`
	SDP  string `json:"sdp,omitempty"`
	// Restart (with a publish offer) replaces the page's publish peer
	// connection by a new one; tracks with the same ids continue for the
	// subscribers, without renegotiation on their side. The page closes
	// its old connection after sending this: a publish connection that
	// closes or fails while it is the current one takes its tracks away.
	// With a subscribe offer from the server, Restart says the offer is
	// for a new connection (the last one failed or was closed): the page
	// answers it on a new RTCPeerConnection and drops the old one.
	Restart   bool                     `json:"restart,omitempty"`
	Candidate *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	// Sources names what each published m-line carries (mid → "camera",
	// "screen", "camera2", "mic"…); unnamed ones default to "camera"/"mic".
	Sources map[string]string `json:"sources,omitempty"`
	// Tracks lists, with a subscribe offer, what each m-line carries.
	Tracks []TrackInfo `json:"tracks,omitempty"`
	// Track and Height (TypeLayer): show track at this height in CSS
	// pixels; 0 means not shown (the server stops sending it).
	Track  string `json:"track,omitempty"`
	Height *int   `json:"height,omitempty"`
	// Track, Mid and Active (TypeLayers, to the publisher): send only the
	// encodings whose rids are in Active, of the publisher's track Track
	// (its own track id) on m-line Mid of its publish connection.
	Mid    string   `json:"mid,omitempty"`
	Active []string `json:"active,omitempty"`
	// Speakers (TypeSpeakers): peer ids, loudest first; empty when silent.
	Speakers []string `json:"speakers,omitempty"`
	// Down and Up (TypeStats): the receiving page's subscribe link, and
	// every publisher's publish link by peer id (the page's own included),
	// as the server measures them.
	Down *LinkStats           `json:"down,omitempty"`
	Up   map[string]LinkStats `json:"up,omitempty"`
	// Code and Text (TypeError): a stable code and a user-safe sentence.
	Code string `json:"code,omitempty"`
	Text string `json:"message,omitempty"`
}

// TrackInfo describes one track a page receives from the server.
type TrackInfo struct {
	Mid    string `json:"mid"`
	ID     string `json:"id"`     // stable across renegotiations and publisher restarts
	Peer   string `json:"peer"`   // the publishing peer's id in the hub
	Kind   string `json:"kind"`   // "audio" or "video"
	Source string `json:"source"` // "camera", "screen", "mic"…
}

// Signaler carries the router's messages to pages; the hub implements it.
// Signal must not block and must not call back into the Router: it queues
// (the router calls it while holding a participant's lock, which is what
// keeps a participant's messages in order).
type Signaler interface {
	Signal(peer string, m Message)
}
