package opentera_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/rehabrtc/rehabrtc/internal/endpoint"
	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
	"github.com/rehabrtc/rehabrtc/internal/opentera/teratest"
	"github.com/rehabrtc/rehabrtc/internal/ports"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/boltstore"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// FuzzRPCEnvelope publishes arbitrary bytes on the service's RPC channel
// of a real redis-server, as anyone who can reach OpenTera's Redis could,
// to a running Service over a real session Manager: the whole path from
// the subscriber through the envelope's decoding (or its salvage) to the
// method and the reply. It must never panic, and every envelope that
// names a usable reply_to gets exactly one reply there: JSON, with the
// envelope's method and id, "OK" or "Error", an "Error" with a null value
// when the envelope does not decode, and a session_manage answer that has
// a status. Seeded with the bad-input catalogue's RPC inputs
// (cmd/rehabrtc/catalogue_test.go).
func FuzzRPCEnvelope(f *testing.F) {
	for _, s := range rpcFuzzSeeds() {
		f.Add(s)
	}
	h := newRPCFuzzHarness(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		want, due := expectedReply(payload)
		// A reply to the RPC channel itself cannot be told apart from the
		// envelope we publish there: it is sent, but not checked.
		due = due && want.GetReplyTo() != h.channel
		if !due {
			if err := h.rdb.Publish(context.Background(), h.channel, payload).Err(); err != nil {
				t.Fatalf("publish: %v", err)
			}
			return
		}
		// Subscribed to reply_to before publishing, as OpenTera's caller is.
		got, err := h.rpc.CallRaw(context.Background(), h.channel, want.GetReplyTo(), payload, 10*time.Second)
		if err != nil {
			t.Fatalf("reply_to %.80q: %v", want.GetReplyTo(), err)
		}
		checkFuzzReply(t, payload, want, got)
	})
}

// rpcFuzzHarness is a started Service and a client to call it.
type rpcFuzzHarness struct {
	rdb     *redis.Client
	rpc     *teratest.RPCClient
	channel string
}

func newRPCFuzzHarness(f *testing.F) *rpcFuzzHarness {
	r := teratest.StartRedis(f)
	bolt, err := boltstore.Open(filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	svc := opentera.New(opentera.Config{Redis: rdb, ServiceKey: serviceKey, ServiceUUID: serviceUUID})
	mgr := session.NewManager(session.Config{
		Store: bolt, Runner: &endpoint.Runner{Bind: "127.0.0.1"}, Ports: ports.New(testutil.FreePorts(f, 4), 4),
		ServiceKey: serviceKey, URLs: session.URLs{Scheme: "https", Host: "rehab.example", Port: 40075}, Events: svc,
	})
	svc.Start(mgr)
	h := &rpcFuzzHarness{rdb: rdb, rpc: teratest.NewRPCClient(rdb), channel: "service." + serviceKey + ".rpc"}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Close(ctx)
		mgr.Shutdown(ctx)
		bolt.Close()
		rdb.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for svc.Ready() != nil {
		if time.Now().After(deadline) {
			f.Fatalf("service not ready: %v", svc.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return h
}

// expectedReply is what the envelope asks for: the message as it decodes
// (or the method, reply_to and id salvaged from it), and whether a reply
// is due: a reply_to the service can publish to.
func expectedReply(payload []byte) (*pb.RPCMessage, bool) {
	m := &pb.RPCMessage{}
	if err := proto.Unmarshal(payload, m); err != nil {
		m = opentera.Salvage(payload)
	}
	to := m.GetReplyTo()
	return m, to != "" && len(to) <= 512 && utf8.ValidString(to)
}

// checkFuzzReply checks one reply against the envelope it answers.
// (CallRaw has checked that it is JSON.)
func checkFuzzReply(t *testing.T, payload []byte, req *pb.RPCMessage, r *pb.RPCReply) {
	t.Helper()
	if r.Method != req.GetMethod() || r.ID != int64(req.GetId()) {
		t.Fatalf("reply for method %q id %d, want %q id %d", r.Method, r.ID, req.GetMethod(), int64(req.GetId()))
	}
	decodes := proto.Unmarshal(payload, &pb.RPCMessage{}) == nil
	switch {
	case r.Status != pb.ReplyStatusOK && r.Status != pb.ReplyStatusError:
		t.Fatalf("reply status %q", r.Status)
	case !decodes && (r.Status != pb.ReplyStatusError || !isNull(r.ReturnValue)):
		t.Fatalf("an envelope that does not decode got %q %s", r.Status, r.ReturnValue)
	case r.Status == pb.ReplyStatusOK && req.GetMethod() == "session_manage":
		var v struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(r.ReturnValue, &v); err != nil || v.Status == "" {
			t.Fatalf("session_manage answer without a status: %s", r.ReturnValue)
		}
	}
}

func isNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

// rpcFuzzSeeds are the catalogue's RPC inputs as envelopes, and its
// envelopes that are not RPC messages at all.
func rpcFuzzSeeds() [][]byte {
	body := func(fields string) string { return `{"session_manage":{` + fields + `}}` }
	nest := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	args := []any{
		`{`, 5,
		`{"action":"start"}`,
		body(`"action":"explode"`),
		body(`"action":"start","parameters":` + nest),
		body(`"action":"start","session_name":"a\udc00"`),
		body(`"action":"start","session_users":["me"]`),
		body(`"action":"stop"`),
		body(`"action":"start","parameters":"` + strings.Repeat("p", 100<<10) + `"`),
		body(`"action":"start"`), // the good call
	}
	var seeds [][]byte
	for i, a := range args {
		b, _ := proto.Marshal(pb.NewRPCCall("session_manage", int64(i), "RedisRPCClient.fuzz", a))
		seeds = append(seeds, b)
	}
	for _, m := range []*pb.RPCMessage{
		pb.NewRPCCall("session_type_config", 20, "RedisRPCClient.fuzz"),
		pb.NewRPCCall("participant_info", 21, "RedisRPCClient.fuzz", partP),
		pb.NewRPCCall("no_such_method", 22, "RedisRPCClient.fuzz"),
		pb.NewRPCCall("session_manage", 23, "", body(`"action":"start"`)), // no reply_to: no answer
	} {
		b, _ := proto.Marshal(m)
		seeds = append(seeds, b)
	}
	good := seeds[len(args)-1]
	return append(seeds,
		[]byte("garbage"), []byte{}, []byte(`{"method":"session_manage"}`),
		bytes.Repeat([]byte{0xff, 0x00, 0x12}, 1000),
		good[:len(good)/2], // cut short after reply_to: salvaged and answered "Error"
	)
}
