package opentera

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// rpcBudget is how long an RPC may take from its arrival to its reply:
// OpenTera's callers wait 10 s (5 s for session_type_config), so the reply
// must leave well before.
const rpcBudget = 8 * time.Second

// The RPC methods of a VideoRehab service.
const (
	methodSessionManage     = "session_manage"
	methodSessionTypeConfig = "session_type_config"
	methodParticipantInfo   = "participant_info"
)

// sessionTypeConfigForm is VideoRehabService's session_type_config form
// (spec §3.8), as OpenTera returns it.
const sessionTypeConfigForm = `{"objecttype":"session_type_config","sections":[{"id":"general","label":"General configuration","_order":1,"items":[{"id":"session_recordable","label":"Allow session recording","type":"boolean"}]}]}`

// rpcChannel is service.<key or uuid>.rpc.
func rpcChannel(id string) string { return "service." + id + ".rpc" }

// dispatch routes one message of the subscription. It runs in the
// subscriber's goroutine and must not block: the work goes to the pool.
func (s *Service) dispatch(m *redis.Message) {
	if m.Channel == UserManagerEvents {
		s.presence([]byte(m.Payload))
		return
	}
	s.rpc(m.Channel, []byte(m.Payload))
}

// rpc decodes one RPCMessage and queues its handling. A malformed message
// is answered with an "Error" envelope when a reply_to can be read from it.
func (s *Service) rpc(channel string, payload []byte) {
	deadline := time.Now().Add(rpcBudget)
	req := &pb.RPCMessage{}
	if err := proto.Unmarshal(payload, req); err != nil {
		req = salvage(payload)
		s.log.Warn("rpc: malformed RPCMessage", "channel", channel, "bytes", len(payload), "err", err, "answered", req.ReplyTo != "")
		s.sendReply(req, pb.NewRPCErrorReply(req, channel))
		return
	}
	ok := s.pool.submit(func() {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		if !s.mine(ctx, req) {
			return
		}
		s.serveRPC(ctx, channel, req)
	})
	if !ok {
		s.log.Warn("rpc: too many calls in progress; refusing", "method", req.GetMethod())
		s.sendReply(req, s.overloaded(req, channel))
	}
}

// mine reports whether this node handles req: always on a single node; in
// a cluster, only the node that wins the call's key (its reply channel and
// id) in Redis. A node that cannot ask answers nothing: another one may
// have won, and a caller waiting for a reply gets one at most once.
func (s *Service) mine(ctx context.Context, req *pb.RPCMessage) bool {
	if s.cfg.Once == nil {
		return true
	}
	key := req.GetReplyTo() + "|" + strconv.FormatUint(req.GetId(), 10) + "|" + req.GetMethod()
	ok, err := s.cfg.Once(ctx, key)
	if err != nil {
		s.log.Error("rpc: cannot tell whether another node handles this call: leaving it", "method", truncate(req.GetMethod(), 64), "err", err)
		return false
	}
	return ok
}

// serveRPC runs one call and publishes its reply on reply_to.
func (s *Service) serveRPC(ctx context.Context, channel string, req *pb.RPCMessage) {
	start := time.Now()
	result, ok := s.call(ctx, req)
	reply := pb.NewRPCErrorReply(req, channel)
	if ok {
		r, err := pb.NewRPCReply(req, channel, result)
		if err != nil {
			s.log.Error("rpc: cannot encode result", "method", req.GetMethod(), "err", err)
		} else {
			reply = r
		}
	}
	s.sendReply(req, reply)
	s.log.Info("rpc", "method", truncate(req.GetMethod(), 64), "id", req.GetId(), "status", reply.Status, "duration", time.Since(start).Round(time.Millisecond))
}

// call runs the method; ok false means an "Error" reply with a null
// return_value (unknown method, unusable arguments).
func (s *Service) call(ctx context.Context, req *pb.RPCMessage) (any, bool) {
	switch req.GetMethod() {
	case methodSessionManage:
		return s.sessionManage(ctx, req), true
	case methodSessionTypeConfig:
		return json.RawMessage(sessionTypeConfigForm), true // the same form for every session type
	case methodParticipantInfo:
		return s.participantInfo(ctx, req), true
	}
	s.log.Warn("rpc: unknown method", "method", truncate(req.GetMethod(), 64))
	return nil, false
}

// sessionManage runs session_manage(json). Every failure of ours becomes
// {"status":"error","error_text":…}: OpenTera's null turned into HTTP 500
// "No answer from service." at the main server.
func (s *Service) sessionManage(ctx context.Context, req *pb.RPCMessage) *Reply {
	if ctx.Err() != nil {
		return errorReply("Service busy, try again")
	}
	arg, err := pb.ArgString(req, 0)
	if err != nil {
		return errorReply("session_manage: the argument must be a JSON string")
	}
	r, err := session.ParseManage([]byte(arg))
	if err == nil {
		var reply *session.Reply
		if reply, err = s.sessions.Manage(ctx, r); err == nil {
			return s.render(ctx, reply)
		}
	}
	code, text := session.PublicError(err)
	if code == session.CodeInternal {
		s.log.Error("session_manage failed", "err", err)
	}
	return errorReply(text)
}

func errorReply(text string) *Reply {
	return &Reply{Status: "error", ErrorText: text}
}

// participantInfo answers the main server's JSON about a participant, or {}.
func (s *Service) participantInfo(ctx context.Context, req *pb.RPCMessage) json.RawMessage {
	empty := json.RawMessage(`{}`)
	arg, err := pb.ArgString(req, 0)
	uuid, ok := session.NormalizeUUID(arg)
	if err != nil || !ok || s.cfg.Backend == nil {
		return empty
	}
	info, err := s.cfg.Backend.Participant(ctx, uuid)
	if err != nil || len(info) == 0 {
		s.log.Warn("participant_info: main server", "err", err)
		return empty
	}
	return info
}

// overloaded is the reply to a call the pool could not take.
func (s *Service) overloaded(req *pb.RPCMessage, channel string) *pb.RPCReply {
	if req.GetMethod() == methodSessionManage {
		if r, err := pb.NewRPCReply(req, channel, errorReply("Service busy, try again")); err == nil {
			return r
		}
	}
	return pb.NewRPCErrorReply(req, channel)
}

// sendReply publishes reply on req.reply_to, if it names a channel.
func (s *Service) sendReply(req *pb.RPCMessage, reply *pb.RPCReply) {
	to := req.GetReplyTo()
	if to == "" || len(to) > 512 || !utf8.ValidString(to) {
		return
	}
	b, err := json.Marshal(reply)
	if err != nil {
		s.log.Error("rpc: cannot encode reply", "err", err)
		return
	}
	s.publish(to, b)
}

// salvage reads method (1), reply_to (2) and id (3) from a message that
// does not decode, up to the first broken field.
func salvage(b []byte) *pb.RPCMessage {
	m := &pb.RPCMessage{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || !utf8.Valid(v) {
				return m
			}
			if num == 1 {
				m.Method = string(v)
			} else {
				m.ReplyTo = string(v)
			}
			b = b[n:]
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return m
			}
			m.Id, b = v, b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return m
			}
			b = b[n:]
		}
	}
	return m
}
