package pb

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// TypeURLPrefix is the prefix of every Any.type_url OpenTera produces and
// accepts (Python's Any.Pack default). Python's Any.Unpack compares the whole
// URL, so the full value is TypeURLPrefix + "opentera.protobuf.<Name>".
const TypeURLPrefix = "type.googleapis.com/"

// Status values of RPCReply.Status.
const (
	ReplyStatusOK    = "OK"
	ReplyStatusError = "Error"
)

// Errors returned (wrapped) by the Arg* accessors.
var (
	ErrNoArg    = errors.New("pb: rpc argument missing")
	ErrArgType  = errors.New("pb: rpc argument has the wrong type")
	ErrArgUnset = errors.New("pb: rpc argument has no value set")
)

// UnixSeconds converts t to the float seconds OpenTera stores in
// Header.time, RPCMessage.timestamp and LogEvent.timestamp. It truncates to
// microseconds and adds them exactly as Python's
// datetime.now().timestamp() does, so equal instants give equal doubles.
func UnixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond()/1000)/1e6
}

// NewValue maps a Go value to an RPC argument the way OpenTera's
// RedisRPCClient maps Python values: bool → bool_value, float64 →
// double_value, int and int64 (and the other signed ints) → int_value,
// string → string_value, []byte → bytes_value. Beyond Python's set it also
// maps float32 → float_value, unsigned ints → uint_value, and passes a *Value
// through unchanged. Anything else is an error (Python prints "Invalid arg"
// and drops it, silently shifting the positional arguments that follow).
func NewValue(v any) (*Value, error) {
	switch x := v.(type) {
	case *Value:
		if x == nil {
			return nil, errors.New("pb: nil *Value rpc argument")
		}
		return x, nil
	case bool:
		return &Value{ArgValue: &Value_BoolValue{BoolValue: x}}, nil
	case float64:
		return &Value{ArgValue: &Value_DoubleValue{DoubleValue: x}}, nil
	case float32:
		return &Value{ArgValue: &Value_FloatValue{FloatValue: x}}, nil
	case int:
		return intValue(int64(x)), nil
	case int8:
		return intValue(int64(x)), nil
	case int16:
		return intValue(int64(x)), nil
	case int32:
		return intValue(int64(x)), nil
	case int64:
		return intValue(x), nil
	case uint:
		return uintValue(uint64(x)), nil
	case uint8:
		return uintValue(uint64(x)), nil
	case uint16:
		return uintValue(uint64(x)), nil
	case uint32:
		return uintValue(uint64(x)), nil
	case uint64:
		return uintValue(x), nil
	case string:
		return &Value{ArgValue: &Value_StringValue{StringValue: x}}, nil
	case []byte:
		return &Value{ArgValue: &Value_BytesValue{BytesValue: x}}, nil
	default:
		return nil, fmt.Errorf("pb: unsupported rpc argument type %T", v)
	}
}

func intValue(x int64) *Value   { return &Value{ArgValue: &Value_IntValue{IntValue: x}} }
func uintValue(x uint64) *Value { return &Value{ArgValue: &Value_UintValue{UintValue: x}} }

// NewRPCCall builds the RPCMessage that RedisRPCClient._internal_rpc_call
// publishes: method, reply_to, id and timestamp = now, with args mapped by
// NewValue. id is stored in the uint64 id field (OpenTera counts from 0 per
// client). It panics on an argument type NewValue rejects: argument types are
// fixed at the call site, so that is a programming error; use NewValue to
// build Args yourself when they are not.
func NewRPCCall(method string, id int64, replyTo string, args ...any) *RPCMessage {
	m := &RPCMessage{
		Method:    method,
		ReplyTo:   replyTo,
		Id:        uint64(id),
		Timestamp: UnixSeconds(time.Now()),
		Args:      make([]*Value, 0, len(args)),
	}
	for i, a := range args {
		v, err := NewValue(a)
		if err != nil {
			panic(fmt.Sprintf("pb.NewRPCCall(%q): argument %d: %v", method, i, err))
		}
		m.Args = append(m.Args, v)
	}
	return m
}

// ArgValue returns argument i of m as a Go value (float64, float32, int64,
// uint64, bool, []byte or string), like the callee's
// getattr(value, value.WhichOneof("arg_value")).
func ArgValue(m *RPCMessage, i int) (any, error) {
	args := m.GetArgs()
	if i < 0 || i >= len(args) {
		return nil, fmt.Errorf("%w: index %d, have %d", ErrNoArg, i, len(args))
	}
	switch v := args[i].GetArgValue().(type) {
	case *Value_DoubleValue:
		return v.DoubleValue, nil
	case *Value_FloatValue:
		return v.FloatValue, nil
	case *Value_IntValue:
		return v.IntValue, nil
	case *Value_UintValue:
		return v.UintValue, nil
	case *Value_BoolValue:
		return v.BoolValue, nil
	case *Value_BytesValue:
		return v.BytesValue, nil
	case *Value_StringValue:
		return v.StringValue, nil
	default:
		return nil, fmt.Errorf("%w: index %d", ErrArgUnset, i)
	}
}

// ArgString returns argument i of m, which must be a string_value.
func ArgString(m *RPCMessage, i int) (string, error) {
	v, err := ArgValue(m, i)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: index %d is %T, want string", ErrArgType, i, v)
	}
	return s, nil
}

// ArgInt returns argument i of m, which must be an int_value, or a
// uint_value that fits in an int64 (Python hands both to the callee as int).
func ArgInt(m *RPCMessage, i int) (int64, error) {
	v, err := ArgValue(m, i)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case int64:
		return x, nil
	case uint64:
		if x <= 1<<63-1 {
			return int64(x), nil
		}
		return 0, fmt.Errorf("%w: index %d: uint_value %d overflows int64", ErrArgType, i, x)
	default:
		return 0, fmt.Errorf("%w: index %d is %T, want int", ErrArgType, i, v)
	}
}

// RPCReply is the JSON that the callee publishes on RPCMessage.reply_to
// (ServiceOpenTera.notify_service_rpc). Pattern is the channel the request
// was received on. On a handler error Status is "Error" and ReturnValue is
// JSON null (a nil ReturnValue marshals as null). An unknown method gets no
// reply at all.
type RPCReply struct {
	Method      string          `json:"method"`
	ID          int64           `json:"id"`
	Pattern     string          `json:"pattern"`
	Status      string          `json:"status"`
	ReturnValue json.RawMessage `json:"return_value"`
}

// NewRPCReply returns the "OK" reply to req carrying result, which is
// marshalled with encoding/json (a json.RawMessage is used as is).
func NewRPCReply(req *RPCMessage, pattern string, result any) (*RPCReply, error) {
	raw, err := json.Marshal(result)
	if err != nil {
		return nil, fmt.Errorf("pb: rpc %q result: %w", req.GetMethod(), err)
	}
	return &RPCReply{
		Method:      req.GetMethod(),
		ID:          int64(req.GetId()),
		Pattern:     pattern,
		Status:      ReplyStatusOK,
		ReturnValue: raw,
	}, nil
}

// NewRPCErrorReply returns the "Error" reply to req, with a null return_value.
func NewRPCErrorReply(req *RPCMessage, pattern string) *RPCReply {
	return &RPCReply{
		Method:  req.GetMethod(),
		ID:      int64(req.GetId()),
		Pattern: pattern,
		Status:  ReplyStatusError,
	}
}

// NewAny packs ev the way Python's Any.Pack does:
// type_url = "type.googleapis.com/opentera.protobuf.<Name>", value = its bytes.
func NewAny(ev proto.Message) (*anypb.Any, error) {
	if ev == nil {
		return nil, errors.New("pb: cannot pack a nil message")
	}
	return anypb.New(ev)
}

func packAll(evs []proto.Message) ([]*anypb.Any, error) {
	out := make([]*anypb.Any, 0, len(evs))
	for _, ev := range evs {
		a, err := NewAny(ev)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// NewTeraEvent builds the TeraEvent of ServiceOpenTera.create_event_message:
// header{version=1, time=now, topic}, events = evs packed in Any.
func NewTeraEvent(topic string, now time.Time, evs ...proto.Message) (*TeraEvent, error) {
	anys, err := packAll(evs)
	if err != nil {
		return nil, err
	}
	return &TeraEvent{
		Header: &TeraEvent_Header{Version: 1, Time: UnixSeconds(now), Topic: topic},
		Events: anys,
	}, nil
}

// WrapTeraEvent returns the bytes ServiceOpenTera.send_event_message
// publishes on topic (e.g. websocket.participant.<uuid>.events): a TeraEvent
// with header{version=1, time=now, topic} and events = [Any(ev)].
func WrapTeraEvent(topic string, ev proto.Message, now time.Time) ([]byte, error) {
	te, err := NewTeraEvent(topic, now, ev)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(te)
}

// NewModuleMessage builds the TeraModuleMessage of
// ServiceOpenTera.create_tera_message: head{version=1, time=now, seq=0,
// source, dest}, data = evs packed in Any.
func NewModuleMessage(source, dest string, now time.Time, evs ...proto.Message) (*TeraModuleMessage, error) {
	anys, err := packAll(evs)
	if err != nil {
		return nil, err
	}
	return &TeraModuleMessage{
		Head: &TeraModuleMessage_Header{Version: 1, Time: UnixSeconds(now), Seq: 0, Source: source, Dest: dest},
		Data: anys,
	}, nil
}

// WrapModuleMessage returns the bytes ServiceOpenTera.send_tera_message
// publishes on dest (e.g. module.TeraServer.UserManagerModule.messages), with
// source = "service" + service_key for a service.
func WrapModuleMessage(source, dest string, ev proto.Message, now time.Time) ([]byte, error) {
	mm, err := NewModuleMessage(source, dest, now, ev)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(mm)
}

// MarshalClientJSON renders ev as the main server sends it on a client
// websocket: TeraMessage{message = Any(ev)} in proto3 JSON with camelCase
// names and default-valued fields included (Python's MessageToJson with
// always_print_fields_with_no_presence=True). Whitespace differs from
// Python's; the JSON value is the same.
func MarshalClientJSON(ev *TeraEvent) ([]byte, error) {
	a, err := NewAny(ev)
	if err != nil {
		return nil, err
	}
	return protojson.MarshalOptions{EmitDefaultValues: true}.Marshal(&TeraMessage{Message: a})
}
