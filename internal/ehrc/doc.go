// Package ehrc is the EHRC-compatible consultation API: a doctor owns a
// namespace (a virtual office), patients check that the doctor is
// available, create a room in that namespace and wait until the doctor
// admits them, then the two browsers set up WebRTC through the server.
//
// It serves EHRC's REST routes (at /api/<route> and /<route>), its
// Socket.IO events over internal/socketio (namespace "/<namespaceId>" at
// /socket.io/) and the same flow on the native hub protocol (a WebSocket at
// /ehrc/ws/<namespaceId>). Both transports meet in one office per
// namespace: a doctor on Socket.IO and a patient on the native protocol
// talk to each other. The native side is the session hub with a Policy
// (internal/hub): the consultation rules are a second room policy on the
// same machinery, not a second hub.
//
// Unlike EHRC, the routes and events mean what they say and check what
// they are given: creating and removing a namespace needs the API key (or,
// to remove, its doctor token); only the holder of the doctor token can
// claim the doctor role; a connection only reaches rooms of its own
// namespace, a patient only its own room, and signaling only goes between
// the two sides of one room. docs/ehrc.md is the full contract.
//
// A room can be promoted to a recorded session_manage session through
// [Sessions] (session.Manager), so consultations get the records, events
// and duration accounting of every other session.
package ehrc
