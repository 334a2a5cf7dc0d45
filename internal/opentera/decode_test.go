package opentera_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
	"github.com/rehabrtc/rehabrtc/internal/opentera/teratest"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// event is one published message, decoded with the pb definitions and its
// envelope checked: a TeraEvent on websocket.* (header version 1, topic =
// channel, time now), or the TeraModuleMessage copy for the UserManager
// (head version 1, seq 0, source "serviceVideoRehabService", dest =
// channel). Either carries exactly one Any with OpenTera's type URL.
type event struct {
	channel string
	copy    bool // the UserManager copy
	msg     proto.Message
}

func decode(t *testing.T, m teratest.Msg) event {
	t.Helper()
	var anys []*anypb.Any
	var at float64
	if m.Channel == opentera.UserManagerMessage {
		var mm pb.TeraModuleMessage
		if err := proto.Unmarshal(m.Payload, &mm); err != nil {
			t.Fatalf("%s: %v", m.Channel, err)
		}
		h := mm.GetHead()
		if h.GetVersion() != 1 || h.GetSeq() != 0 || h.GetSource() != "service"+serviceKey || h.GetDest() != m.Channel {
			t.Fatalf("module message head %+v", h)
		}
		anys, at = mm.GetData(), h.GetTime()
	} else {
		var te pb.TeraEvent
		if err := proto.Unmarshal(m.Payload, &te); err != nil {
			t.Fatalf("%s: %v", m.Channel, err)
		}
		h := te.GetHeader()
		if h.GetVersion() != 1 || h.GetTopic() != m.Channel {
			t.Fatalf("TeraEvent header %+v on %s", h, m.Channel)
		}
		anys, at = te.GetEvents(), h.GetTime()
	}
	if d := time.Since(time.Unix(0, int64(at*1e9))); d < -time.Minute || d > time.Minute {
		t.Fatalf("header time %v is %s away from now", at, d)
	}
	if len(anys) != 1 {
		t.Fatalf("%s: %d payloads, want 1", m.Channel, len(anys))
	}
	msg, err := anys[0].UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	if want := "type.googleapis.com/opentera.protobuf." + string(msg.ProtoReflect().Descriptor().Name()); anys[0].GetTypeUrl() != want {
		t.Fatalf("type url %q, want %q", anys[0].GetTypeUrl(), want)
	}
	return event{channel: m.Channel, copy: m.Channel == opentera.UserManagerMessage, msg: msg}
}

func take(t *testing.T, e *env, n int) []event {
	t.Helper()
	ms := e.events.Take(t, n, 10*time.Second)
	out := make([]event, len(ms))
	for i, m := range ms {
		out[i] = decode(t, m)
	}
	return out
}

func ch(kind session.Kind, uuid string) string {
	return opentera.EventChannel(session.Identity{Kind: kind, UUID: uuid})
}

// channelsOf lists the channels of evs, in order.
func channelsOf(evs []event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.channel
	}
	return out
}
