// Package session is the domain core of rehabrtc: the lifecycle of video
// sessions (start, stop, invite, remove, invite_reply with OpenTera's
// semantics), their records and events, and the invitees' access tokens.
//
// The Manager is the only writer of session state. It depends only on small
// interfaces defined here (Store, Runner, Ports, and EventSink, which hears
// each committed change, in order, outside the Manager's lock); main picks
// their implementations. Invitations (Change ChangeStarted) wait until the
// session's endpoint answers: at once for an in-process endpoint, when its
// Ready channel closes for a ReadyEndpoint.
package session
