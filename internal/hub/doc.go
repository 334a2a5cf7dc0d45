// Package hub is the signaling hub of one session: it admits WebSocket clients
// with a join key, tells them who else is there, and relays WebRTC signaling
// and small application messages between the peers of that session only.
// The wire contract is docs/protocol.md; this package implements it.
//
// The hub does not listen. [Hub.ServeHTTP] upgrades a request and serves the
// connection in a goroutine of the hub, which [Hub.Close] waits for, and
// returns; [Hub.ServeRequest] does the same with the caller's accept options
// and client address, in the caller's goroutine. A caller that upgrades by
// itself hands the *websocket.Conn to [Hub.Serve] instead.
//
// A [Policy] in the Config swaps the session rules for other room rules on
// the same machinery: the hub becomes private and hands every message after
// the admitting join to the Policy (internal/ehrc's consultations use this).
//
// # Concurrency
//
// Each connection has one reader, the goroutine that called Serve (or that
// ServeHTTP started), and one writer goroutine, which the reader starts and
// waits for before returning. The writer takes whatever frames are queued
// and writes them under a write deadline, in one write to the socket when
// ServeHTTP or ServeRequest upgraded the connection (cork.go); it also sends the pings (each
// waits for its pong in a short-lived goroutine the writer waits for) and
// enforces the join deadline with a one-shot timer. Everyone else talks to a
// connection by queuing a frame on its bounded queue: enqueueing never
// blocks and never touches the socket, so it is allowed under the hub lock,
// and a full queue closes its connection with 4008 instead of slowing the
// sender down. Each client has a message budget (a token bucket checked by
// its reader) far smaller than a queue (4096 frames, 4 MiB), so the bursts
// of many clients at once cannot overflow the queue of a peer that keeps
// reading: only a peer that stops reading fills its queue.
//
// Membership changes (join, leave, kick, replace) and the notices they cause
// are queued under the hub's write lock and relays under its read lock, so
// every client sees one order of events, its welcome first. With a Policy,
// the welcome is held until Policy.Joined has run, so that nothing the
// client does on its welcome reaches a Policy that does not know it.
//
// Frames are decoded and encoded by hand (scan.go, encode.go) rather than
// with encoding/json, which costs about six times the CPU per relayed
// message (docs/performance.md); a broadcast shares one encoded frame among
// its recipients.
package hub
