package sfu

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestVP8Info(t *testing.T) {
	key := []byte{0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01} // 640×360
	for _, tc := range []struct {
		name string
		p    []byte
		want frameInfo
	}{
		{"empty", nil, frameInfo{}},
		{"keyframe, no extension", append([]byte{0x10}, key...), frameInfo{keyframe: true, start: true, width: 640, height: 360}},
		{"keyframe, 15-bit picture id", append([]byte{0x90, 0x80, 0x81, 0x23}, key...), frameInfo{keyframe: true, start: true, width: 640, height: 360}},
		{"keyframe, 7-bit picture id, TL0PICIDX, TID 0", append([]byte{0x90, 0xe0, 0x05, 0x07, 0x20}, key...),
			frameInfo{keyframe: true, start: true, width: 640, height: 360}},
		{"interframe TID 2", []byte{0x90, 0xa0, 0x81, 0x23, 0x80, 0x11, 0, 0}, frameInfo{tid: 2, start: true}},
		{"continuation of a keyframe", []byte{0x80, 0x80, 0x81, 0x23, 0x10, 0, 0}, frameInfo{}},
		{"partition 1 start", []byte{0x11, 0x10, 0, 0}, frameInfo{}},
		{"truncated extension", []byte{0x90}, frameInfo{}},
		{"truncated picture id", []byte{0x90, 0x80}, frameInfo{}},
		{"keyframe without room for a size", []byte{0x10, 0x10, 0, 0}, frameInfo{keyframe: true, start: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := vp8Info(tc.p)
			got.pidAt, got.tl0At, got.pid15 = 0, 0, false // TestVP8PictureID
			if got != tc.want {
				t.Fatalf("vp8Info = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestVP8PictureID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		p      []byte
		pid    uint16
		tl0    uint8
		set    uint16
		setTL0 uint8
		want   []byte
	}{
		{"15-bit id and TL0PICIDX", []byte{0x90, 0xe0, 0x81, 0x23, 0x07, 0x20, 0x11},
			0x0123, 7, 0x7ffe, 9, []byte{0x90, 0xe0, 0xff, 0xfe, 0x09, 0x20, 0x11}},
		{"7-bit id", []byte{0x90, 0x80, 0x05, 0x11}, 5, 0, 0x85, 0, []byte{0x90, 0x80, 0x05, 0x11}},
		{"no id", []byte{0x10, 0x11}, 0, 0, 9, 9, []byte{0x10, 0x11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fi := vp8Info(tc.p)
			pid, tl0 := vp8PictureID(tc.p, fi)
			if pid != tc.pid || tl0 != tc.tl0 {
				t.Fatalf("read %#x %d, want %#x %d", pid, tl0, tc.pid, tc.tl0)
			}
			setVP8PictureID(tc.p, fi, tc.set&pidMask(fi), tc.setTL0)
			if string(tc.p) != string(tc.want) {
				t.Fatalf("wrote % x, want % x", tc.p, tc.want)
			}
		})
	}
	// A descriptor cut short locates nothing.
	if fi := vp8Info([]byte{0x90, 0xc0, 0x81, 0x23}); fi.pidAt != 0 || fi.tl0At != 0 {
		t.Fatalf("truncated descriptor: %+v", fi)
	}
}

func TestH264Info(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []byte
		key  bool
	}{
		{"empty", nil, false},
		{"IDR slice", []byte{0x65, 1, 2}, true},
		{"SPS", []byte{0x67, 1, 2}, true},
		{"non-IDR slice", []byte{0x41, 1, 2}, false},
		{"STAP-A with SPS", []byte{0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 1}, true},
		{"STAP-A without", []byte{0x78, 0, 2, 0x41, 1}, false},
		{"STAP-A with a lying size", []byte{0x78, 0xff, 0xff, 0x67}, false},
		{"FU-A start of IDR", []byte{0x7c, 0x85, 1}, true},
		{"FU-A middle of IDR", []byte{0x7c, 0x05, 1}, false},
		{"FU-A truncated", []byte{0x7c}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := h264Info(tc.p).keyframe; got != tc.key {
				t.Fatalf("keyframe = %v, want %v", got, tc.key)
			}
		})
	}
}

// TestMapSeq drives the sequence rewriting through losses, late packets,
// duplicates and dropped packets.
func TestMapSeq(t *testing.T) {
	type step struct {
		src  uint16
		drop bool
		out  uint16
		ok   bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{100, false, 1000, true}, {101, false, 1001, true}, {102, false, 1002, true}}},
		{"a loss keeps its number for the late packet", []step{
			{100, false, 1000, true}, {102, false, 1002, true}, {101, false, 1001, true}, {103, false, 1003, true}}},
		{"a duplicate is not sent twice", []step{{100, false, 1000, true}, {101, false, 1001, true}, {101, false, 0, false},
			{100, false, 0, false}}},
		{"dropped packets leave no hole", []step{
			{100, false, 1000, true}, {101, true, 0, false}, {102, false, 1001, true}, {101, false, 0, false}}},
		{"wrap-around", []step{{65534, false, 1000, true}, {65535, false, 1001, true}, {0, false, 1002, true}}},
		{"a huge jump is a discontinuity", []step{{100, false, 1000, true}, {30000, false, 1001, true}, {30001, false, 1002, true}}},
		{"too old", []step{{5000, false, 1000, true}, {5001, false, 1001, true}, {3000, false, 0, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &downTrack{nextOut: 1000, lastSrc: tc.steps[0].src - 1}
			for i, s := range tc.steps {
				out, ok := d.mapSeq(s.src, s.drop)
				if ok != s.ok || (ok && out != s.out) {
					t.Fatalf("step %d (src %d): got %d %v, want %d %v", i, s.src, out, ok, s.out, s.ok)
				}
			}
		})
	}
}

func TestFit(t *testing.T) {
	cam := []option{{0, allTIDs, 100e3}, {1, allTIDs, 400e3}, {2, allTIDs, 1200e3}}
	// A screen share with three temporal layers on one spatial layer,
	// then a second spatial layer.
	screen := []option{{0, 0, 300e3}, {0, 1, 450e3}, {0, 2, 600e3}, {1, 0, 700e3}, {1, 1, 1000e3}, {1, 2, 1500e3}}
	for _, tc := range []struct {
		name   string
		budget float64
		cands  []candidate // in priority order
		want   []int
	}{
		{"plenty", 10e6, []candidate{{opts: cam, want: 2}, {opts: cam, want: 2}}, []int{2, 2}},
		{"tile wants a small layer", 10e6, []candidate{{opts: cam, want: 0}, {opts: cam, want: 1}}, []int{0, 1}},
		{"hidden tile", 10e6, []candidate{{opts: cam, want: -1}}, []int{-1}},
		{"priority gets the upgrade", 1.2e6, []candidate{{opts: cam, want: 2}, {opts: cam, want: 2}}, []int{1, 1}},
		{"first in priority goes highest", 1.6e6, []candidate{{opts: cam, want: 2, now: 2}, {opts: cam, want: 2}}, []int{2, 1}},
		{"slow link: lowest layers, not frozen", 250e3, []candidate{{opts: cam, want: 2}, {opts: cam, want: 2}}, []int{0, 0}},
		{"below the lowest: lowest layers kept, not frozen", 150e3, []candidate{{opts: cam, want: 2}, {opts: cam, want: 2}}, []int{0, 0}},
		{"upgrades keep 10 % headroom", 440e3, []candidate{{opts: cam, want: 2, now: 0}}, []int{0}},
		{"staying needs no headroom", 440e3, []candidate{{opts: cam, want: 2, now: 1}}, []int{1}},
		{"screen keeps resolution, drops frame rate", 900e3, []candidate{{opts: screen, want: 5, now: 5}}, []int{3}},
		{"screen at full rate", 2e6, []candidate{{opts: screen, want: 5, now: 5}}, []int{5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cs []*candidate
			for i := range tc.cands {
				c := tc.cands[i] // now defaults to 0: the lowest option flows
				cs = append(cs, &c)
			}
			fit(cs, tc.budget)
			for i, c := range cs {
				if c.choice != tc.want[i] {
					t.Fatalf("track %d: choice %d, want %d", i, c.choice, tc.want[i])
				}
			}
		})
	}
}

func TestBWE(t *testing.T) {
	now := time.Now()
	b := newBWE(1e6, 50e3, 30e6)
	if got := b.estimate(now); got != 1e6 {
		t.Fatalf("initial %v", got)
	}
	b.remb(3e6, now)
	if got := b.estimate(now); got != 3e6 {
		t.Fatalf("REMB alone: %v", got)
	}
	b.loss(0, now) // no loss: the receiver's estimate governs
	if got := b.estimate(now); got != 3e6 {
		t.Fatalf("REMB and no loss: %v", got)
	}
	now = now.Add(time.Second)
	b.remb(3e6, now)
	b.loss(64, now) // 25 % loss: back off
	if got := b.estimate(now); got >= 3e6*0.9 {
		t.Fatalf("25 %% loss did not back off: %v", got)
	}
	if got := b.estimate(now.Add(time.Minute)); got < 50e3 {
		t.Fatalf("stale reports: %v below the floor", got)
	}
}

// seqRecorder is a subscriber's writer that checks what fanOut hands it:
// consecutive outgoing sequence numbers and the upstream payload.
type seqRecorder struct {
	n       int
	last    uint16
	bad     string
	payload func(i int) []byte
}

func (w *seqRecorder) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	switch {
	case w.bad != "":
	case w.n > 0 && h.SequenceNumber != w.last+1:
		w.bad = fmt.Sprintf("packet %d: seq %d after %d", w.n, h.SequenceNumber, w.last)
	case !bytes.Equal(payload, w.payload(w.n)):
		w.bad = fmt.Sprintf("packet %d: wrong payload", w.n)
	}
	w.n++
	w.last = h.SequenceNumber
	return len(payload), nil
}

func (w *seqRecorder) Write(b []byte) (int, error) { return len(b), nil }

// TestFanOutSplit checks that a packet reaches every subscriber once and in
// order however the fan-out is split among workers, including the sizes
// around the split threshold and uneven parts.
func TestFanOutSplit(t *testing.T) {
	for _, tc := range []struct{ subs, workers int }{
		{1, 2}, {2*fanOutChunk - 1, 2}, {2 * fanOutChunk, 2}, {100, 1}, {100, 2}, {101, 3}, {100, 8},
	} {
		t.Run(fmt.Sprintf("subs=%d/workers=%d", tc.subs, tc.workers), func(t *testing.T) {
			src := &vp8Source{width: 640, height: 360, frameSize: 3 * vp8PayloadMax, keyEvery: 4}
			var sent [][]byte
			recs := make([]*seqRecorder, tc.subs)
			u, l := benchTrack(t, tc.subs, tc.workers, func(i int) interface {
				WriteRTP(*rtp.Header, []byte) (int, error)
				Write([]byte) (int, error)
			} {
				recs[i] = &seqRecorder{payload: func(k int) []byte { return sent[k] }}
				return recs[i]
			})
			raw := make([]byte, maxPacket)
			var p rtp.Packet
			fan := newFanPool(tc.workers - 1)
			defer fan.close()
			for range 10 {
				for _, pkt := range src.next() {
					m, err := pkt.MarshalTo(raw)
					must(t, err)
					must(t, p.Unmarshal(raw[:m]))
					sent = append(sent, slices.Clone(p.Payload))
					u.handle(fan, l, &ingress{}, &p, raw[:m], time.Now().UnixNano())
				}
			}
			for i, r := range recs {
				if r.bad != "" || r.n != len(sent) {
					t.Fatalf("subscriber %d: got %d of %d packets; %s", i, r.n, len(sent), r.bad)
				}
			}
		})
	}
}

// orderRecorder notes which subscriber a packet reached, in order.
type orderRecorder struct {
	i     int
	order *[]int
}

func (w orderRecorder) WriteRTP(_ *rtp.Header, payload []byte) (int, error) {
	*w.order = append(*w.order, w.i)
	return len(payload), nil
}

func (w orderRecorder) Write(b []byte) (int, error) { return len(b), nil }

// TestFanOutRotates checks that the serial fan-out starts one subscriber
// further on with each packet, so that over as many packets as there are
// subscribers each one is served last exactly once.
func TestFanOutRotates(t *testing.T) {
	const subs = 7
	var order []int
	u, l := benchTrack(t, subs, 1, func(i int) interface {
		WriteRTP(*rtp.Header, []byte) (int, error)
		Write([]byte) (int, error)
	} {
		return orderRecorder{i: i, order: &order}
	})
	src := &vp8Source{width: 640, height: 360, frameSize: subs * vp8PayloadMax, keyEvery: 100}
	raw := make([]byte, maxPacket)
	var p rtp.Packet
	last := map[int]int{}
	for _, pkt := range src.next() {
		order = order[:0]
		m, err := pkt.MarshalTo(raw)
		must(t, err)
		must(t, p.Unmarshal(raw[:m]))
		u.handle(nil, l, &ingress{}, &p, raw[:m], time.Now().UnixNano())
		if len(order) != subs {
			t.Fatalf("packet %d reached %d of %d subscribers: %v", pkt.SequenceNumber, len(order), subs, order)
		}
		for k := 1; k < subs; k++ {
			if order[k] != (order[k-1]+1)%subs {
				t.Fatalf("packet %d: order %v is not a rotation", pkt.SequenceNumber, order)
			}
		}
		last[order[subs-1]]++
	}
	if len(last) != subs {
		t.Fatalf("over %d packets the last served were %v; want each subscriber once", subs, last)
	}
}

// TestDownTrackSenderReport checks the report a downTrack makes from its
// counters: none before anything was sent or once unbound; otherwise the
// RTP time of the newest frame advanced by the wall time since its first
// packet, and the packets and payload bytes sent.
func TestDownTrackSenderReport(t *testing.T) {
	const t0 = int64(1_700_000_000_000_000_000) // unix nanos
	for _, tc := range []struct {
		name     string
		frames   int   // 3-packet frames forwarded, 33 ms apart from t0
		unbind   bool  // the subscriber's transport went away
		at       int64 // report time after the last frame's first packet
		ok       bool
		rtpAhead uint32 // RTP time after the last frame's timestamp
	}{
		{name: "nothing sent", frames: 0, ok: false},
		{name: "at the frame", frames: 1, at: 0, ok: true, rtpAhead: 0},
		{name: "half a second on", frames: 2, at: 500 * int64(time.Millisecond), ok: true, rtpAhead: 45000},
		{name: "unbound", frames: 2, unbind: true, ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, l := benchTrack(t, 1, 1, func(int) interface {
				WriteRTP(*rtp.Header, []byte) (int, error)
				Write([]byte) (int, error)
			} {
				return &discardWriter{}
			})
			d := (*u.subs.Load())[0]
			src := &vp8Source{width: 640, height: 360, frameSize: 3 * vp8PayloadMax, keyEvery: 100}
			raw := make([]byte, maxPacket)
			var p rtp.Packet
			var last uint32
			var payload uint32
			now := t0
			for f := range tc.frames {
				now = t0 + int64(f)*33*int64(time.Millisecond)
				for _, pkt := range src.next() {
					m, err := pkt.MarshalTo(raw)
					must(t, err)
					must(t, p.Unmarshal(raw[:m]))
					payload += uint32(len(p.Payload))
					u.handle(nil, l, &ingress{}, &p, raw[:m], now)
					d.mu.Lock()
					last = d.lastOutTS
					d.mu.Unlock()
				}
			}
			if tc.unbind {
				must(t, d.Unbind(nil)) // Unbind reads no context
			}
			sr, ok := d.senderReport(now + tc.at)
			if ok != tc.ok {
				t.Fatalf("report made: %v, want %v (%+v)", ok, tc.ok, sr)
			}
			if !ok {
				return
			}
			if want := uint32(3 * tc.frames); sr.PacketCount != want || sr.OctetCount != payload {
				t.Errorf("counts %d packets, %d bytes; sent %d, %d", sr.PacketCount, sr.OctetCount, want, payload)
			}
			if sr.SSRC != d.ssrc || sr.RTPTime != last+tc.rtpAhead {
				t.Errorf("SSRC %d RTP time %d; want %d, %d", sr.SSRC, sr.RTPTime, d.ssrc, last+tc.rtpAhead)
			}
			if got := time.Unix(int64(sr.NTPTime>>32)-ntpEpochOffset, 0); got.Unix() != (now+tc.at)/1e9 {
				t.Errorf("NTP seconds %v, want %v", got.Unix(), (now+tc.at)/1e9)
			}
		})
	}
}
