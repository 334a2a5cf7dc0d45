// Package hub is the signaling hub of one session: it admits WebSocket clients
// with a join key, tells them who else is there, and relays WebRTC signaling
// and small application messages between the peers of that session only.
// The wire contract is docs/protocol.md; this package implements it.
//
// The hub does not listen. The caller upgrades the HTTP request and hands the
// *websocket.Conn to [Hub.Serve], which runs that client until it ends.
// Upgrading with [Hub.Accept] rather than websocket.Accept makes the writer put
// each batch of queued frames into one write to the socket, and gives the
// connection small buffers (docs/performance.md).
//
// A [Policy] in the Config swaps the session rules for other room rules on
// the same machinery: the hub becomes private and hands every message after
// the admitting join to the Policy (internal/ehrc's consultations use this).
//
// # Concurrency
//
// Each connection has exactly one reader, the goroutine that called Serve,
// and at most one writer at a time. Everyone else talks to a connection by
// appending an encoded frame to its bounded queue: enqueueing never blocks
// and never touches the socket, so it is allowed under the hub lock, and a
// queue that overflows closes its connection with 4008 instead of slowing
// the sender down. Membership changes (join, leave, kick, replace) and the
// notices they cause are queued under the hub's write lock and relays under
// its read lock, so every client sees one order of events, its welcome first.
//
// The writer is started on demand: enqueue starts a goroutine when frames
// wait and none runs, and that goroutine drains the queue in batches (a
// burst costs one wake-up) and exits once it is empty. The heartbeat is one
// timer per connection whose function sends the ping, waits for the pong
// (coder/websocket's Ping blocks until the reader reads it) and re-arms
// itself; it also enforces the join deadline. So an idle peer costs its
// reader goroutine and a timer, not two or three parked goroutines, which
// matters with thousands of idle peers. The writer, the timer functions and
// the context watcher are all counted in a per-connection WaitGroup that
// Serve waits on before returning.
//
// Sockets are read and written with contexts that are never cancelled, which
// keeps coder/websocket from allocating a context watcher per frame. Blocked
// I/O is unblocked by closing the connection instead: by the writer when the
// connection ends, or by its write watchdog, a reusable timer armed for each
// batch. Outgoing frames are encoded once by appending bytes (no reflection),
// and a broadcast shares one frame among its recipients.
package hub
