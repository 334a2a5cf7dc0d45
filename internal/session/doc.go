// Package session is the domain core of rehabrtc: the lifecycle of video
// sessions (start, stop, invite, remove, invite_reply with OpenTera's
// semantics), their records and events, and the invitees' access tokens.
//
// The Manager is the only writer of session state. It depends only on small
// interfaces defined here (Store, Runner, Ports); main picks their
// implementations.
package session
