package hub

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
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
