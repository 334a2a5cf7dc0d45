// Package childproc runs each session in a child process: OpenTera's
// process-per-session mode, chosen when WebRTC.executable is set.
//
// The parent side is [Runner], a session.Runner. It spawns
// `<executable> [<script>] --port=<port> …` in WebRTC.working_directory, in
// a process group of its own, with the child's stdout and stderr logged
// through slog, and returns once the child reports that its listener is
// bound. A child that dies on its own closes its endpoint's Done channel
// within milliseconds; the session Manager watches it.
//
// The child side is [Serve], which `rehabrtc signal` runs: the same pages
// and hub as an in-process session, for one session, on its own port.
//
// No key ever reaches a child's command line or environment. The parent
// stays the only holder of the session's keys: the child asks it over a
// private control channel, a Unix socket pair inherited as file descriptor
// 3, that carries one JSON object per line ([Msg]):
//
//	parent → child  {"op":"init","session_uuid":…,"ice_servers":[…],"peer_ice":true,"policy":""}   (native children only)
//	child → parent  {"op":"ready"}                                     listener bound
//	child → parent  {"op":"admit","id":N,"key":…,"uuid":…}
//	parent → child  {"op":"reply","id":N,"ok":true,"kind":"user","uuid":…}
//	child → parent  {"op":"valid","id":N,"key":…}
//	parent → child  {"op":"reply","id":N,"ok":true}
//	child → parent  {"op":"ice","id":N,"kind":…,"uuid":…}              (when init said peer_ice)
//	parent → child  {"op":"reply","id":N,"ok":true,"ice_servers":[…],"expires":T}
//	parent → child  {"op":"peers","id":N}
//	child → parent  {"op":"reply","id":N,"ok":true,"peers":[…]}
//	parent → child  {"op":"kick","kind":…,"uuid":…}
//	parent → child  {"op":"stop","reason":"ended"|"shutdown"}
//
// With embedded TURN (or external TURN with a shared secret) the parent
// mints each admitted peer's credentials when the child asks ("ice"), at
// welcome and at each renewal, so a child never holds a TURN secret and
// credentials die with the invitation as in-process sessions' do.
//
// A child whose control channel closes (the parent died) shuts down.
//
// OpenTera's Node EasyRTC server.js works as the child too ([EasyRTC]
// mode): a small preload script, loaded with node --require, speaks the same
// protocol, checks page keys with the parent, and gives server.js its
// --key argument inside the process only. See docs/architecture.md.
package childproc
