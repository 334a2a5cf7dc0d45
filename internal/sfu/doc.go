// Package sfu is the selective forwarding unit of a session: it receives
// each participant's media once over WebRTC (pion) and forwards every
// track to every other participant, choosing per subscriber the simulcast
// layer its link and tile size can take.
//
// # Ownership and signaling
//
// One [Engine] per process holds the pion APIs built over the ICE UDP and
// TCP muxes that the process (serve) owns. One [Router] per session,
// owned by the session's endpoint next to its hub. The router admits
// nobody: the hub calls [Router.Add] for a peer it admitted, passes the
// peer's SFU messages to [Router.Handle], and calls [Router.Remove] when the
// peer leaves or is removed; the router's messages to pages go out through
// the hub's [Signaler]. So admission, remove and stop apply to media with
// no second path.
//
// # Connection model: two peer connections per participant
//
// Each participant has a publish connection (the page offers, the server
// answers; media flows to the server) and a subscribe connection (the
// server offers, the page answers; media flows to the page). LiveKit and
// ion-sfu do the same; Galène uses one connection per stream. The reasons:
//   - each connection has a single offerer, so there is no glare and no
//     perfect-negotiation dance between a page and the server: a page's
//     new camera is its own offer, another participant joining is the
//     server's offer, and the two never cross;
//   - the subscribe side changes whenever anyone joins or leaves, and
//     renegotiating it never disturbs the page's own upstream (its
//     encoder and its congestion control keep running);
//   - feedback differs by direction: the publish connection negotiates
//     transport-cc (the browser runs its own congestion control), the
//     subscribe connection negotiates REMB (the browser reports what it
//     can receive, and the server needs no per-subscriber estimator);
//   - a publisher can replace its publish connection (restart) while
//     subscribers keep their tracks: the forwarding rewrites numbering
//     across the change, so their side needs no renegotiation.
//
// The cost is a second ICE/DTLS handshake per page, paid once at join;
// over the UDP mux both connections share the server's one port.
//
// # Forwarding
//
// Each published track ([upTrack]) has up to three layers (simulcast rids
// q/h/f low to high, or l/m, 0/1/2; "h" is half size, the middle layer);
// one goroutine per layer reads its RTP, copies each
// packet once into the layer's packet cache, and hands it to every
// subscriber's [downTrack] from a copy-on-write list (no lock on the hot
// path but the downTrack's own). From 32 subscribers up, one packet's
// fan-out is shared with up to GOMAXPROCS-1 helper goroutines of the
// reader (its fanPool), and the reader reads on only once every
// subscriber has the packet, so a keyframe burst to a class does not
// queue on one core. A downTrack is a webrtc.TrackLocal that
// rewrites SSRC, payload type, sequence number and timestamp for its
// subscriber: numbering stays continuous across layer switches and
// publisher restarts, switches happen only at keyframes, and sequence
// numbers of packets lost upstream are kept free so that late
// retransmissions still fit in. Subscribers' NACKs are answered from the
// cache; their PLI/FIR become one PLI per layer per 500 ms to the
// publisher. Sender and receiver reports come from pion's report
// interceptors; upstream losses are NACKed by pion's NACK generator.
//
// # Concurrency
//
// Router.mu guards the peer and track maps and is taken before any
// participant's mu; a participant's mu guards its connections and
// negotiation state and is held while signaling, which keeps its messages
// in order (Signal only queues). Every goroutine (layer readers, RTCP
// readers, one negotiator per participant, the router's tick loop) is
// started through the router and waited for by [Router.Close], except the
// fan-out helpers, which the layer reader that starts them stops and
// waits for when it ends.
package sfu
