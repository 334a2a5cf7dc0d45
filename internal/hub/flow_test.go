package hub

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A client that never reads fills its TCP buffers, then either its queue
// overflows (4008) or a write outlasts the write timeout (the connection is
// dropped). Either way the others keep receiving.
func TestSlowConsumer(t *testing.T) {
	for name, tt := range map[string]struct {
		cfg       Config
		wantClose websocket.StatusCode // what the slow client reads last; -1: no close frame
	}{
		// A long write timeout, so that the queue overflow ends the client.
		"queue overflow": {Config{QueueLen: 8, WriteTimeout: time.Minute, RateLimit: noLimit, RateBurst: noLimit}, CloseTooSlow},
		// A long queue, in frames and in bytes (the flood sends 60 KiB
		// frames: 4 MiB is 70 of them, which a starved writer may queue
		// before its deadline), so that the write deadline ends the client.
		"write timeout": {Config{QueueLen: 4096, QueueBytes: 1 << 30, WriteTimeout: 100 * time.Millisecond, RateLimit: noLimit, RateBurst: noLimit}, -1},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, tt.cfg, smallSendBuffers)
			sender, _ := e.join(t, keyUser, "u1", "sender")
			fast, _ := e.join(t, keyParticipant, "p1", "fast")
			sender.expect("peer-joined")
			slow := e.dialSmall(t)
			slow.send(map[string]any{"type": "join", "key": keyParticipant, "uuid": "p2"})
			slow.id = slow.expect("welcome")["id"].(string)
			sender.expect("peer-joined")
			fast.expect("peer-joined")

			floodUntilGone(t, sender, fast, slow)
			sender.expect("peer-left")
			sender.send(map[string]any{"type": "message", "topic": "chat", "data": "still here"})
			if m := fast.expect("message"); m["data"] != "still here" {
				t.Fatalf("got %v", m)
			}
			slow.expectClose(tt.wantClose) // reading at last: the backlog, then the end
			waitFor(t, func() bool { return len(e.serveErrs()) == 1 })
			if err := e.serveErrs()[0]; err == nil || tt.wantClose > 0 && websocket.CloseStatus(err) != tt.wantClose {
				t.Fatalf("Serve returned %v, want a fault with close status %v", err, tt.wantClose)
			}
		})
	}
}

// noLimit as RateLimit and RateBurst lets a test flood the hub.
const noLimit = 1e12

// floodUntilGone broadcasts 60 KiB messages until fast sees slow leave.
func floodUntilGone(t *testing.T, sender, fast, slow *client) {
	t.Helper()
	msg := `{"type":"message","topic":"chat","data":"` + strings.Repeat("x", 60<<10) + `"}`
	for i := range 5000 { // 300 MB: loopback buffers are far smaller
		sender.sendRaw(msg)
		b := fast.readRaw()
		if bytes.HasPrefix(b, []byte(`{"type":"peer-left"`)) {
			if want := `{"type":"peer-left","id":"` + slow.id + `"}`; string(b) != want {
				t.Fatalf("got %s, want %s", b, want)
			}
			fast.expect("message") // the message sent last still arrives
			t.Logf("slow client gone after %d messages", i+1)
			return
		}
		if !bytes.HasPrefix(b, []byte(`{"type":"message"`)) {
			t.Fatalf("fast got %.100s", b)
		}
	}
	t.Fatal("slow consumer never disconnected")
}

// coder/websocket answers pings only while reading: a client that stops
// reading stops answering, and is closed with 4010.
func TestHeartbeat(t *testing.T) {
	e := newEnv(t, Config{PingInterval: 20 * time.Millisecond, PongTimeout: 500 * time.Millisecond})
	alive, _ := e.join(t, keyUser, "u1", "alive")
	silent, _ := e.join(t, keyParticipant, "p1", "silent")
	alive.expect("peer-joined")

	// alive keeps reading (round trips), answering the pings; silent does
	// not read at all. alive outlives silent by many ping intervals.
	start := time.Now()
	for time.Since(start) < 10*time.Second {
		alive.send(map[string]any{"type": "signal", "to": alive.id, "data": "x"})
		if m := alive.read(); m["type"] == "peer-left" {
			if m["id"] != silent.id {
				t.Fatalf("got %v", m)
			}
			if time.Since(start) < 500*time.Millisecond {
				t.Fatalf("silent closed after %v, before its pong timeout", time.Since(start))
			}
			silent.expectClose(CloseHeartbeat)
			alive.expect("signal")
			alive.roundTrip()
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("silent was never closed")
}

// When the caller's context ends (the HTTP server stops serving the
// request), the connection is closed with 1001 and Serve returns nil.
func TestServeContextCanceled(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.setBaseContext(ctx)
	a, b := pair(t, e)
	cancel()
	for _, c := range []*client{a, b} {
		c.expectClose(websocket.StatusGoingAway)
	}
	waitFor(t, func() bool { return len(e.serveErrs()) == 2 })
	for _, err := range e.serveErrs() {
		if err != nil {
			t.Fatalf("Serve returned %v, want nil", err)
		}
	}
}
