package opentera_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
)

// TestSessionManageEveryAction drives every action through
// RedisRPCClient-style calls: protobuf RPCMessage with one string_value,
// reply awaited on reply_to.
func TestSessionManageEveryAction(t *testing.T) {
	e := newEnv(t, envOpts{})
	s := e.start([]string{userA}, []string{partP}, []string{devD})
	if s.ID != 1 || s.Port != e.base || s.CreatorUUID != userA || s.Key == "" || s.Status != 1 {
		t.Fatalf("started %+v", s)
	}
	if !strings.HasPrefix(s.URLUsers, "https://rehab.example:40075/webrtc/") || len(s.Invitations) != 3 {
		t.Fatalf("urls %q invitations %+v", s.URLUsers, s.Invitations)
	}
	steps := []struct {
		fields     map[string]any
		status     string
		parts, dev []string
	}{
		{map[string]any{"action": "invite", "id_session": 1, "session_participants": []string{partQ}}, "invited", []string{partP, partQ}, []string{devD}},
		{map[string]any{"action": "remove", "id_session": 1, "session_participants": []string{partP}}, "removed", []string{partQ}, []string{devD}},
		{map[string]any{"action": "invite_reply", "id_session": 1, "parameters": map[string]any{"reply_code": "accept", "participant_uuid": partQ}}, "OK", []string{partQ}, []string{devD}},
		{map[string]any{"action": "invite_reply", "id_session": 1, "parameters": map[string]any{"reply_code": 2, "device_uuid": devD}}, "OK", []string{partQ}, []string{}},
		{map[string]any{"action": "stop", "id_session": 1}, "stopped", []string{partQ}, []string{}},
	}
	for _, st := range steps {
		r := e.manage(st.fields)
		got := r.session(t)
		if r.Status != st.status || !slices.Equal(got.Participants, st.parts) || !slices.Equal(got.Devices, st.dev) {
			t.Fatalf("%v: %+v", st.fields["action"], r)
		}
	}
	for _, tc := range []struct {
		fields map[string]any
		text   string
	}{
		{map[string]any{"action": "stop", "id_session": 1}, "No matching session to stop"},
		{map[string]any{"action": "invite", "id_session": 9, "session_users": []string{userB}}, "No matching session"},
		{map[string]any{"action": "fly"}, `unknown action "fly"`},
		{map[string]any{"action": "invite", "id_session": 1, "session_users": []string{"nope"}}, "session_users[0]: not a UUID"},
	} {
		r := e.manage(tc.fields)
		if r.Status != "error" || !strings.Contains(r.ErrorText, tc.text) || r.Session != nil {
			t.Errorf("%v: %+v, want error %q", tc.fields, r, tc.text)
		}
	}
}

func TestSessionManageOnUUIDChannel(t *testing.T) {
	e := newEnv(t, envOpts{})
	r := e.manageOn(serviceUUID, map[string]any{"action": "start", "id_session": 0, "id_session_type": 1, "session_users": []string{userA}})
	if r.Status != "started" {
		t.Fatalf("%+v", r)
	}
}

// TestRPCEnvelopeBytes pins the reply envelope of one call.
func TestRPCEnvelopeBytes(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, arg := range []any{int64(1), `{"id_session_type": 1}`} {
		msg := &pb.RPCMessage{Method: "session_type_config", ReplyTo: "RedisRPCClient.pinned", Id: 42, Timestamp: 1.5}
		v, _ := pb.NewValue(arg)
		msg.Args = []*pb.Value{v}
		payload, _ := proto.Marshal(msg)
		r, err := e.rpc.CallRaw(context.Background(), "service."+serviceKey+".rpc", msg.ReplyTo, payload, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(r)
		const want = `{"method":"session_type_config","id":42,"pattern":"service.VideoRehabService.rpc","status":"OK",` +
			`"return_value":{"objecttype":"session_type_config","sections":[{"id":"general","label":"General configuration","_order":1,` +
			`"items":[{"id":"session_recordable","label":"Allow session recording","type":"boolean"}]}]}}`
		if string(got) != want {
			t.Fatalf("arg %v:\n got %s\nwant %s", arg, got, want)
		}
	}
}

func TestRPCErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	channel := "service." + serviceKey + ".rpc"

	r, err := e.rpc.Call(ctx, serviceKey, "no_such_method", 5*time.Second, "x")
	if err != nil || r.Status != "Error" || string(r.ReturnValue) != "null" {
		t.Fatalf("unknown method: %+v %v", r, err)
	}
	r, err = e.rpc.Call(ctx, serviceKey, "session_manage", 5*time.Second, int64(3))
	if err != nil || r.Status != "OK" || string(r.ReturnValue) != `{"status":"error","error_text":"session_manage: the argument must be a JSON string"}` {
		t.Fatalf("int argument: %+v %v", r, err)
	}
	r, err = e.rpc.Call(ctx, serviceKey, "session_manage", 5*time.Second, "{nope")
	if err != nil || !strings.Contains(string(r.ReturnValue), `"error_text":"malformed JSON`) {
		t.Fatalf("bad JSON: %+v %v", r, err)
	}
	r, err = e.rpc.Call(ctx, serviceKey, "participant_info", 5*time.Second, partP)
	if err != nil || string(r.ReturnValue) != "{}" {
		t.Fatalf("participant_info without backend: %+v %v", r, err)
	}

	// A broken message whose reply_to can still be read is answered.
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, "session_manage")
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, "RedisRPCClient.broken")
	b = append(b, 0x2a, 0xff) // args: a length that runs past the end
	r, err = e.rpc.CallRaw(ctx, channel, "RedisRPCClient.broken", b, 5*time.Second)
	if err != nil || r.Status != "Error" || r.Method != "session_manage" || string(r.ReturnValue) != "null" {
		t.Fatalf("malformed with reply_to: %+v %v", r, err)
	}
	// Garbage gets no answer, and the subscriber carries on.
	if err := e.redis.Client.Publish(ctx, channel, "\xff\xff\xff").Err(); err != nil {
		t.Fatal(err)
	}
	if r, err := e.rpc.Call(ctx, serviceKey, "session_type_config", 5*time.Second, int64(1)); err != nil || r.Status != "OK" {
		t.Fatalf("after garbage: %+v %v", r, err)
	}
}

// TestRPCConcurrentCalls: calls are served by a pool, in parallel.
func TestRPCConcurrentCalls(t *testing.T) {
	e := newEnv(t, envOpts{})
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for range 24 {
		wg.Go(func() {
			r, err := e.rpc.Call(context.Background(), serviceKey, "session_type_config", 5*time.Second, int64(1))
			if err == nil && r.Status != "OK" {
				err = errStatus(r.Status)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

type errStatus string

func (e errStatus) Error() string { return "status " + string(e) }
