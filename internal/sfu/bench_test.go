package sfu

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// discardWriter stands for a subscriber's SRTP stream when only the
// router's own work is measured: it marshals the packet, as pion would
// before encrypting, and throws it away.
type discardWriter struct{ buf [maxPacket + 64]byte }

func (w *discardWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	n, err := h.MarshalTo(w.buf[:])
	if err != nil {
		return 0, err
	}
	return n + copy(w.buf[n:], payload), nil
}

func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// srtpWriter is what pion does per packet once the router hands it over:
// marshal, encrypt (AES-128-GCM, what Chrome negotiates), one sendto on the
// shared UDP socket. The interceptor chain (sender reports) is left out.
type srtpWriter struct {
	ctx   *srtp.Context
	conn  *net.UDPConn
	to    *net.UDPAddr
	plain [maxPacket + 64]byte
	enc   [maxPacket + 128]byte
}

func (w *srtpWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	n, err := h.MarshalTo(w.plain[:])
	if err != nil {
		return 0, err
	}
	n += copy(w.plain[n:], payload)
	out, err := w.ctx.EncryptRTP(w.enc[:0], w.plain[:n], nil)
	if err != nil {
		return 0, err
	}
	return w.conn.WriteToUDP(out, w.to)
}

func (w *srtpWriter) Write(b []byte) (int, error) { return len(b), nil }

// benchTrack builds an upTrack with n bound subscribers, without peer
// connections: the forwarding path alone.
func benchTrack(b testing.TB, n, workers int, writer func(i int) interface {
	WriteRTP(*rtp.Header, []byte) (int, error)
	Write([]byte) (int, error)
}) (*upTrack, *layer) {
	cfg := RouterConfig{}.withDefaults()
	r := &Router{cfg: cfg, log: cfg.Logger}
	pub := newParticipant("pub", r)
	u := &upTrack{id: "pub/cam", publisher: pub, source: "camera", isVP8: true, kind: 2, workers: workers}
	// workers is what readLayer would give its fanPool; callers make the pool.
	for i := range u.layers {
		u.layers[i] = &layer{index: i, cache: &packetCache{}}
	}
	u.subs.Store(&[]*downTrack{})
	for i := range n {
		s := newParticipant(fmt.Sprintf("sub%d", i), r)
		s.subReady.Store(true)
		d := newDownTrack(u, s)
		d.ready.Store(true)
		d.writer, d.ssrc, d.pt, d.clock = writer(i), uint32(1000+i), 96, 90000
		u.addSub(d)
	}
	return u, u.layers[0]
}

// BenchmarkForward measures the forwarding hot path: one upstream VP8
// packet of 1,100 bytes cached and sent to every subscriber, per
// subscriber count and fan-out workers. ns/fwd and allocs/fwd are per
// forwarded packet, in wall time: with workers=2 and 100 subscribers,
// ns/op is how long the last subscriber of a packet waits.
func BenchmarkForward(b *testing.B) {
	for _, w := range []string{"discard", "srtp+udp"} {
		for _, n := range []int{1, 5, 100} {
			for _, k := range []int{1, 2} {
				if k > 1 && n < 2*fanOutChunk {
					continue // fanOut would not split: same as workers=1
				}
				b.Run(fmt.Sprintf("writer=%s/subs=%d/workers=%d", w, n, k), func(b *testing.B) { benchForward(b, w, n, k) })
			}
		}
	}
}

func benchForward(b *testing.B, kind string, n, workers int) {
	var sink *net.UDPConn
	var out *net.UDPConn
	if kind == "srtp+udp" {
		var err error
		// Nobody reads the sink: the kernel drops what overflows, and the
		// cost measured is the sender's.
		sink, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		must(b, err)
		defer sink.Close()
		out, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		must(b, err)
		defer out.Close()
	}
	u, l := benchTrack(b, n, workers, func(i int) interface {
		WriteRTP(*rtp.Header, []byte) (int, error)
		Write([]byte) (int, error)
	} {
		if kind == "discard" {
			return &discardWriter{}
		}
		key := make([]byte, 16)
		salt := make([]byte, 12)
		key[0], salt[0] = byte(i), byte(i>>8)
		ctx, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
		must(b, err)
		return &srtpWriter{ctx: ctx, conn: out, to: sink.LocalAddr().(*net.UDPAddr)}
	})
	src := &vp8Source{width: 640, height: 360, frameSize: 1100 * 24, keyEvery: 1 << 30}
	key := src.next() // start every subscriber at a keyframe
	src.frameSize = vp8PayloadMax - 8
	raw := make([]byte, maxPacket)
	var p rtp.Packet
	fan := newFanPool(workers - 1)
	defer fan.close()
	feed := func(pkt *rtp.Packet) {
		m, err := pkt.MarshalTo(raw)
		must(b, err)
		must(b, p.Unmarshal(raw[:m]))
		u.handle(fan, l, &ingress{}, &p, raw[:m], time.Now().UnixNano())
	}
	for _, pkt := range key {
		feed(pkt)
	}
	frames := make([]*rtp.Packet, 0, 1024)
	for range 1024 {
		frames = append(frames, src.next()...)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frames[0].Payload) * n))
	b.ResetTimer()
	// each[i] is packet i's whole fan-out: how long its last subscriber
	// waited, the router's share of the added latency.
	each := make([]time.Duration, b.N)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		pkt := frames[i%len(frames)]
		pkt.SequenceNumber = uint16(int(key[len(key)-1].SequenceNumber) + 1 + i)
		pkt.Timestamp = uint32(i) * 3000
		t0 := time.Now()
		feed(pkt)
		each[i] = time.Since(t0)
	}
	el := time.Since(start)
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N*n), "ns/fwd")
	slices.Sort(each)
	b.ReportMetric(float64(each[b.N/2].Nanoseconds())/1e3, "fanout-p50-µs")
	b.ReportMetric(float64(each[(b.N-1)*99/100].Nanoseconds())/1e3, "fanout-p99-µs")
	for _, d := range *u.subs.Load() {
		if d.packets < uint64(b.N) {
			b.Fatalf("subscriber got %d of %d packets", d.packets, b.N)
		}
	}
}
