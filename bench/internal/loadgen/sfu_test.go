package loadgen

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestParseSFUScenarios(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []SFUScenario
		wantErr bool
	}{
		{in: "1x101/1,1x6,10x4", want: []SFUScenario{{1, 101, 1}, {1, 6, 6}, {10, 4, 4}}},
		{in: " 2x3 ", want: []SFUScenario{{2, 3, 3}}},
		{in: "1x1", wantErr: true},                   // nobody to forward to
		{in: "0x4", wantErr: true},                   // no session
		{in: "1x4/5", wantErr: true},                 // more publishers than people
		{in: "1x4/0", wantErr: true},                 // nobody publishes
		{in: "4", wantErr: true},                     // no x
		{in: "ax4", wantErr: true},                   // not a number
		{in: "1x4/b", wantErr: true},                 // not a number
		{in: "100x100", wantErr: true},               // above 2,000 participants
		{in: "1x101/1,", wantErr: true},              // empty entry
		{in: "-1x4", wantErr: true},                  // negative
		{in: "1x-4/1", wantErr: true},                // negative
		{in: "1x4/-1", wantErr: true},                // negative
		{in: "1x4x4", wantErr: true},                 // two x
		{in: "1x4/1/1", wantErr: true},               // two /
		{in: "", wantErr: true},                      // nothing
		{in: "1x9999999999999999999", wantErr: true}, // overflows
	} {
		got, err := ParseSFUScenarios(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%q: got %v, want %v", tc.in, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: got %v, want %v", tc.in, got[i], tc.want[i])
			}
			if back, err := ParseSFUScenarios(got[i].String()); err != nil || back[0] != got[i] {
				t.Errorf("%v does not round-trip through String: %v %v", got[i], back, err)
			}
		}
	}
}

// TestVP8Gen checks the media shape: 4-packet frames, a 24-packet keyframe
// every 60 frames or when asked, 1,100-byte payloads, continuous sequence
// numbers and 90 kHz timestamps, and a keyframe header the router reads.
func TestVP8Gen(t *testing.T) {
	g := &vp8Gen{width: 1280, height: 720, seq: 65530}
	wantSeq := uint16(65530)
	keys := 0
	for f := range 121 {
		if f == 70 {
			g.keyAsked.Store(true)
		}
		ps, key, seq, ts := g.frame()
		wantKey := f%60 == 0 || f == 70
		if key != wantKey {
			t.Fatalf("frame %d: key %v, want %v", f, key, wantKey)
		}
		n := 4
		if key {
			n = 24
			keys++
			if ps[0][4]&1 != 0 || ps[0][7] != 0x9d || binary.LittleEndian.Uint16(ps[0][10:]) != 1280 || binary.LittleEndian.Uint16(ps[0][12:]) != 720 {
				t.Fatalf("frame %d: not a VP8 keyframe header: % x", f, ps[0][:14])
			}
		} else if ps[0][4]&1 != 1 {
			t.Fatalf("frame %d: delta frame marked as key", f)
		}
		if len(ps) != n || seq != wantSeq || ts != uint32(f)*3000 {
			t.Fatalf("frame %d: %d packets from seq %d ts %d, want %d from %d ts %d", f, len(ps), seq, ts, n, wantSeq, f*3000)
		}
		for i, p := range ps {
			if len(p) != vp8PacketBytes || p[0]&0x80 == 0 || (p[0]&0x10 != 0) != (i == 0) {
				t.Fatalf("frame %d packet %d: descriptor % x, %d bytes", f, i, p[:4], len(p))
			}
		}
		wantSeq += uint16(n)
	}
	if keys != 4 { // frames 0, 60, 70 (asked), 120
		t.Errorf("%d keyframes, want 4", keys)
	}
}

// TestRTPStamp reads the send time back from packets as pion marshals
// them, with CSRCs, a header extension and padding, and refuses packets
// that cannot hold one.
func TestRTPStamp(t *testing.T) {
	payload := make([]byte, 100)
	want := sendStamp{ssrc: 0xdeadbeef, seq: 65000, t: 123456789}
	putStamp(payload, want)
	for _, tc := range []struct {
		name string
		pkt  rtp.Packet
	}{
		{"plain", rtp.Packet{Header: rtp.Header{Version: 2}, Payload: payload}},
		{"csrc", rtp.Packet{Header: rtp.Header{Version: 2, CSRC: []uint32{1, 2}}, Payload: payload}},
		{"extension", func() rtp.Packet {
			p := rtp.Packet{Header: rtp.Header{Version: 2}, Payload: payload}
			_ = p.Header.SetExtension(1, []byte{0x80 | 30})
			_ = p.Header.SetExtension(3, []byte{1, 2, 3, 4, 5})
			return p
		}()},
		{"padding", rtp.Packet{Header: rtp.Header{Version: 2, Padding: true}, Payload: payload, PaddingSize: 7}},
	} {
		b, err := tc.pkt.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := rtpStamp(b); !ok || got != want {
			t.Errorf("%s: stamp %+v %v", tc.name, got, ok)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 11), append([]byte{0x80}, make([]byte, 15)...), {0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}} {
		if _, ok := rtpStamp(bad); ok {
			t.Errorf("% x: read a stamp", bad)
		}
	}
}

// TestUDPDrops splits the drops between two readings into the server's
// port and the rest, ignoring sockets that came or went in between.
func TestUDPDrops(t *testing.T) {
	before := map[uint64]udpSock{1: {port: 5000, drops: 10}, 2: {port: 40000, drops: 3}, 3: {port: 40001, drops: 7}, 9: {port: 1, drops: 99}}
	after := map[uint64]udpSock{1: {port: 5000, drops: 25}, 2: {port: 40000, drops: 3}, 3: {port: 40001, drops: 9}, 4: {port: 40002, drops: 50}}
	srv, others := udpDrops(before, after, 5000)
	if srv != 15 || others != 2 {
		t.Errorf("drops %d on the server, %d elsewhere; want 15 and 2", srv, others)
	}
	if s := udpSockets(); s == nil {
		t.Error("/proc/net/udp unreadable")
	}
}

// TestFanOutSplitW8 groups socket latencies by packet: the first
// subscriber's delay and the spread to the last, one sample per packet.
func TestFanOutSplitW8(t *testing.T) {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	lat := []time.Duration{ms(1), ms(3), ms(2), ms(5), ms(5), ms(9)}
	key := []uint64{1, 1, 1, 2, 2, 3}
	first, spread := fanOutSplit(lat, key)
	if first.N != 3 || first.Max != 9 || first.P50 != 5 || spread.N != 3 || spread.Max != 2 || spread.P50 != 0 {
		t.Errorf("first %+v, spread %+v", first, spread)
	}
	if f, s := fanOutSplit(nil, nil); f.N != 0 || s.N != 0 {
		t.Errorf("empty: %+v %+v", f, s)
	}
}

// TestFirstOfOncePerSSRC: a track pion announces again after a
// renegotiation (the same SSRC) is no new subscription, so its packets
// add no join-to-first-media sample; each new SSRC does.
func TestFirstOfOncePerSSRC(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ssrcs []uint32
		want  []bool
	}{
		{name: "one track", ssrcs: []uint32{7}, want: []bool{true}},
		{name: "three tracks", ssrcs: []uint32{1, 2, 3}, want: []bool{true, true, true}},
		{name: "announced again", ssrcs: []uint32{1, 2, 3, 2}, want: []bool{true, true, true, false}},
		{name: "twice at once", ssrcs: []uint32{5, 5, 6, 5}, want: []bool{true, false, true, false}},
	} {
		c := newSFUPeer(nil, nil, &sfuTally{}, nil, false)
		for i, s := range tc.ssrcs {
			c.mu.Lock()
			got := c.firstOf(s)
			c.mu.Unlock()
			if got != tc.want[i] {
				t.Errorf("%s: call %d (SSRC %d): %v, want %v", tc.name, i, s, got, tc.want[i])
			}
		}
	}
}
