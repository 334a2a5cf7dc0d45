// Package relay is rehabrtc's TURN service: an embedded TURN server
// (pion/turn) on UDP, TCP and TLS, and the credentials handed to browsers
// for it and for external TURN servers (coturn's use-auth-secret).
//
// Credentials are bound to the invitation. Each admitted peer gets a
// username that names its session, its identity and an expiry, and a
// password that is an HMAC of the username under a per-process secret. The
// server accepts them only while the [Roster] says the identity is still
// admitted, and closes that peer's allocations within a sweep interval
// (200 ms) once it is not: remove, stop and key expiry end relayed media.
//
// The relay is not open: peers in loopback, private, link-local, multicast
// and unspecified ranges are refused (403) except the relay's own address
// and the configured allow list; allocations are capped per credential, per
// session and in lifetime.
//
// The Server owns every goroutine it starts and waits for them in Close;
// pion/turn's own goroutines end when Close closes the sockets they read.
package relay
