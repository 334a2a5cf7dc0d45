// Package opentera makes rehabrtc a drop-in replacement for OpenTera's
// VideoRehabService. It speaks OpenTera's Redis protocol byte for byte
// (package pb holds the protobuf messages):
//
//   - the RPC server on service.<key>.rpc and service.<uuid>.rpc
//     (session_manage, session_type_config, participant_info), replying with
//     the JSON envelope of RedisRPCClient on reply_to;
//   - the events of a session's life (JoinSessionEvent with each invitee's
//     personal link, LeaveSessionEvent, JoinSessionReplyEvent,
//     StopSessionEvent) on websocket.{user|participant|device}.<uuid>.events,
//     plus the TeraModuleMessage copies the UserManager module needs;
//   - presence: re-invitations on *_CONNECTED, and the end of a session when
//     its creator disconnects;
//   - the bookkeeping of sessions in the main server's database through its
//     REST API with the service JWT (Store), while the runtime state stays
//     in the local bbolt store.
//
// Service implements session.EventSink; it needs only the small Sessions
// interface from the session Manager, so main wires the two together.
// docs/opentera.md lists every decision taken where OpenTera is vague or
// wrong.
package opentera
