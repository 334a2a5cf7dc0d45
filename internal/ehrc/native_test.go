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
