package hub

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestServeAcceptedConn: a connection the caller upgraded itself with
// Accept and handed to Serve is served as well, in order.
func TestServeAcceptedConn(t *testing.T) {
	e := newEnv(t, Config{})
	e.mu.Lock()
	e.plainServe = true
	e.mu.Unlock()
	u, _ := e.join(t, keyUser, "u", "Doc")
	p, _ := e.join(t, keyParticipant, "p", "Pat")
	u.expect("peer-joined")
	for i := range 20 {
		u.send(map[string]any{"type": "signal", "to": p.id, "data": i})
	}
	for i := range 20 {
		if m := p.expect("signal"); m["data"] != float64(i) {
			t.Fatalf("signal %d: got %v", i, m)
		}
	}
}

// TestAcceptBatchAndBigFrames: bursts of frames, some larger than every
// buffer, arrive intact and in order.
func TestAcceptBatchAndBigFrames(t *testing.T) {
	e := newEnv(t, Config{})
	u, _ := e.join(t, keyUser, "u", "Doc")
	p, _ := e.join(t, keyParticipant, "p", "Pat")
	u.expect("peer-joined")
	sizes := []int{1, 300, 512, 1025, 4097, 5000, 60 << 10, 2}
	for i, n := range sizes {
		u.send(map[string]any{"type": "signal", "to": p.id, "data": fmt.Sprintf("%d:%s", i, strings.Repeat("x", n))})
	}
	for i, n := range sizes {
		m := p.expect("signal")
		if want := fmt.Sprintf("%d:%s", i, strings.Repeat("x", n)); m["data"] != want {
			t.Fatalf("frame %d (%d bytes): got %.40v…", i, n, m["data"])
		}
	}
	p.roundTrip()
}

// TestAcceptKeepsEarlyFrames: a client that sends its join in the same
// packet as the handshake must not lose it.
func TestAcceptKeepsEarlyFrames(t *testing.T) {
	e := newEnv(t, Config{})
	c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var kb [16]byte
	_, _ = rand.Read(kb[:])
	req := "GET / HTTP/1.1\r\nHost: " + c.RemoteAddr().String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(kb[:]) + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	join := maskedText([]byte(`{"type":"join","key":"` + keyUser + `","uuid":"u"}`))
	if _, err := c.Write(append([]byte(req), join...)); err != nil { // one write, one packet
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(`"type":"welcome"`)) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("no welcome after an early join (%v): %q", err, got)
		}
	}
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 101 ")) {
		t.Fatalf("handshake: %q", got)
	}
}

// maskedText encodes one masked client text frame (payload < 126 bytes).
func maskedText(p []byte) []byte {
	var key [4]byte
	_, _ = rand.Read(key[:])
	b := append([]byte{0x81, 0x80 | byte(len(p))}, key[:]...)
	for i, c := range p {
		b = append(b, c^key[i%4])
	}
	return b
}

// countingConn records each Write to the socket.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }

func TestCorkConn(t *testing.T) {
	cc := &countingConn{}
	co := &corkConn{Conn: cc, timeout: time.Second, bufs: new(sync.Pool)}
	if _, err := co.Write([]byte("a")); err != nil || len(cc.writes) != 1 {
		t.Fatalf("not corked: want a write through, got %q %v", cc.writes, err)
	}
	co.cork()
	for _, s := range []string{"b", "c", "d"} {
		if n, err := co.Write([]byte(s)); n != 1 || err != nil {
			t.Fatal(n, err)
		}
	}
	if len(cc.writes) != 1 {
		t.Fatalf("corked: wrote %q", cc.writes)
	}
	if err := co.uncork(); err != nil {
		t.Fatal(err)
	}
	if len(cc.writes) != 2 || string(cc.writes[1]) != "bcd" {
		t.Fatalf("uncork: got writes %q, want one \"bcd\"", cc.writes)
	}
	if err := co.uncork(); err != nil || len(cc.writes) != 2 {
		t.Fatalf("empty uncork wrote %q", cc.writes)
	}
	co.cork()
	big := bytes.Repeat([]byte("z"), maxCork)
	_, _ = co.Write([]byte("head"))
	_, _ = co.Write(big)
	if len(cc.writes) != 3 || len(cc.writes[2]) != len(big)+4 {
		t.Fatalf("over maxCork: want it written at once, got %d writes", len(cc.writes))
	}
	_ = co.uncork()
	if co.buf != nil {
		t.Fatal("buffer kept after uncork")
	}
}

// TestServeHTTP: the hub as the HTTP handler serves each connection in a
// goroutine of its own, which Close waits for (goleak checks none is left).
func TestServeHTTP(t *testing.T) {
	h := New(Config{Admitter: keyAdmitter{}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	u := dialURL(t, srv, "/")
	u.send(map[string]any{"type": "join", "key": keyUser, "uuid": "u"})
	u.id = u.expect("welcome")["id"].(string)
	p := dialURL(t, srv, "/")
	p.send(map[string]any{"type": "join", "key": keyParticipant, "uuid": "p"})
	p.id = p.expect("welcome")["id"].(string)
	u.expect("peer-joined")
	u.send(map[string]any{"type": "signal", "to": p.id, "data": "hi"})
	if m := p.expect("signal"); m["data"] != "hi" {
		t.Fatalf("got %v", m)
	}
	if err := h.Close(ctxTimeout(t, 10*time.Second), SessionEnded); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{u, p} {
		c.expect("session-ended")
		c.expectClose(CloseSessionEnded)
	}
}
