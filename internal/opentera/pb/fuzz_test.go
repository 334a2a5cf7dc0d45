package pb

import (
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzUnmarshalRPCMessage feeds arbitrary bytes, as anyone on the Redis
// service.<key>.rpc channel could publish, through the decode path a callee
// uses: it must never panic, and whatever decodes must re-encode and decode
// to the same message.
func FuzzUnmarshalRPCMessage(f *testing.F) {
	seeds := [][]byte{
		nil,
		goldenRPCSessionManage,
		wire(0x0a, 1, "m", 0x2a, 11, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		wire(0x0a, 1, "m", 0x2a, 0), // Value with no member set
		wire(0x0a, 200, "short"),    // length past the end
		wire(0x2a, 3, 0x3a, 5, "x"), // nested length past its parent
		wire(0x3a, 2, 0xff, 0xfe),   // invalid UTF-8 in a string field
		wire(0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), // varint too long
		wire(0x07),                  // wire type 7 does not exist
		wire(0x21, 1, 2),            // truncated fixed64
		wire(0x00, 0x01),            // field number 0
		wire(0x78, 1, 0x0a, 1, "m"), // unknown field first
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var m RPCMessage
		if err := proto.Unmarshal(in, &m); err != nil {
			return
		}
		for i := range len(m.GetArgs()) + 1 {
			_, _ = ArgValue(&m, i)
			_, _ = ArgString(&m, i)
			_, _ = ArgInt(&m, i)
		}
		if r := NewRPCErrorReply(&m, "p"); r != nil {
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("error reply does not marshal: %v", err)
			}
		}
		out, err := proto.Marshal(&m)
		if err != nil {
			t.Fatalf("re-encode of a decoded message failed: %v", err)
		}
		var back RPCMessage
		if err := proto.Unmarshal(out, &back); err != nil {
			t.Fatalf("decode of re-encoded bytes failed: %v", err)
		}
		if !proto.Equal(&m, &back) {
			t.Fatalf("round trip changed the message: %v != %v", &m, &back)
		}
	})
}
