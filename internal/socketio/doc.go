// Package socketio is a small server for the Socket.IO v5 protocol over
// Engine.IO v4: what socket.io 4.x servers speak, enough for unmodified
// socket.io-client 4.x applications (EHRC's frontend uses 4.1).
//
// References: the Engine.IO v4 and Socket.IO v5 protocol documents in
// github.com/socketio/socket.io (docs/engine.io-protocol/v4-current.md,
// docs/socket.io-protocol/v5-current.md).
//
// # What it does
//
//   - Engine.IO: handshake; HTTP long-polling (GET receives, POST sends,
//     packets joined by the 0x1e record separator); WebSocket, directly or
//     by upgrade from polling (2probe/3probe, 5, the pending poll ended with
//     a noop); server-initiated ping/pong heartbeat; socket.io's JSON error
//     answers ({"code":1,"message":"Session ID unknown"} and so on).
//   - Socket.IO: CONNECT with an optional auth object, namespaces ("/" and
//     any other, admitted by Options.Authorize, refused with CONNECT_ERROR),
//     DISCONNECT, EVENT and ACK in both directions.
//
// # What it does not do
//
//   - Binary: BINARY_EVENT/BINARY_ACK packets and binary frames close the
//     connection (payloads are JSON only; a []byte argument is sent as a
//     base64 string by encoding/json).
//   - Engine.IO v3 clients (socket.io 2.x), JSONP polling, CORS credentials, rooms and
//     broadcasting (the caller keeps its own sets of *Socket), connection
//     state recovery, server-side ack timeouts, numeric event names.
//
// # Concurrency and limits
//
// Each Engine.IO session has one goroutine that reads its packets and runs
// every callback of its sockets in order; writes go through one bounded
// queue (256 packets) drained by one writer, so Emit never blocks and a
// client that does not keep up is disconnected. A transport hands the loop
// one decoded packet at a time, so a session holds at most about two
// MaxPayload-sized inputs. A connection may join 16 namespaces and have 256
// EmitWithAck calls pending per socket. Close waits for every goroutine.
//
// # Admission
//
// Sessions that have joined no namespace yet are bounded in total and per
// client address (Options.MaxPending, MaxPendingPerAddress): a handshake
// over a bound is refused with 429 or 503 and Retry-After before any state
// or goroutine exists. Browser origins other than the server's own are
// refused with 403 unless listed in Options.AllowedOrigins, which get CORS
// headers on polling and may open WebSockets.
package socketio
