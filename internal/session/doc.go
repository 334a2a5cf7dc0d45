// Package session is the domain core of rehabrtc: the lifecycle of video
// sessions (start, stop, invite, remove, invite_reply with OpenTera's
// semantics), their records and events, and the invitees' access tokens.
//
// The Manager is the only writer of session state. It depends only on small
// interfaces defined here (Store, Runner, Endpoint, Ports, Gate, and
// EventSink, which hears each session's committed changes in order); main
// picks their implementations. It holds no lock across I/O: each action
// takes its session's lock and does its storage and endpoint I/O under it
// alone (docs/architecture.md, "Concurrency rules"). Invitations (Change
// ChangeStarted) wait until the session's endpoint is Ready.
package session
