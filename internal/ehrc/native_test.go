package ehrc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rehabrtc/rehabrtc/internal/hub"
)

// The native socket counts connections that have not joined yet per client
// address, as the hub's own endpoint does: over the cap a connection is
// told busy and closed with 1013, and the Counters see the others pending.
func TestNativePendingPerAddress(t *testing.T) {
	counters := new(hub.Counters)
	e := newTestEnv(t, Config{Counters: counters})
	e.createNS("doc")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func() *websocket.Conn {
		t.Helper()
		ws, _, err := websocket.Dial(ctx, e.wsURL(NativePrefix+"doc"), nil)
		if err != nil {
			t.Fatalf("dial native: %v", err)
		}
		return ws
	}
	for range hub.DefaultMaxPendingPerAddr { // all from 127.0.0.1, none joins
		ws := dial()
		t.Cleanup(func() { _ = ws.CloseNow() })
	}
	waitFor(t, "pending connections counted", func() bool {
		return counters.Pending.Load() == hub.DefaultMaxPendingPerAddr
	})
	ws := dial()
	defer ws.CloseNow()
	_, b, err := ws.Read(ctx)
	if err != nil || !strings.Contains(string(b), `"code":"busy"`) {
		t.Fatalf("over the cap: got %q, %v; want busy", b, err)
	}
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != hub.CloseTryAgainLater {
		t.Fatalf("over the cap: closed with %v, want %d", err, hub.CloseTryAgainLater)
	}
}

// The per-address cap on connections without the doctor token counts
// native patients too, not only Socket.IO ones: one address holding room
// ids cannot fill an office.
func TestNativeMembersPerAddress(t *testing.T) {
	e := newTestEnv(t, Config{Limits: Limits{MembersPerAddress: 2}})
	e.createNS("doc")
	for range 2 { // from 127.0.0.1, like the next
		if c, code := e.dialNative("doc", e.createRoom()); c == nil {
			t.Fatalf("patient refused under the cap: %s", code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.wsURL(NativePrefix+"doc"), nil)
	if err != nil {
		t.Fatalf("dial native: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"join","key":"`+e.createRoom()+`"}`)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != hub.CloseRemoved {
				t.Fatalf("third patient from one address: read %q, then %v; want it removed (%d)", got, err, hub.CloseRemoved)
			}
			break
		}
		got = append(got, string(b))
	}
	if len(got) != 1 || !strings.Contains(got[0], `"type":"removed"`) {
		t.Fatalf("third patient from one address got %q, want only removed", got)
	}
}
