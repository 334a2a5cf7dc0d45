package sfu

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// BenchmarkSession runs whole sessions through a real router and real
// pion peer connections on loopback: g groups of n participants, where
// pubs of each group publish a VP8 camera at 30 fps (≈1.1 Mbit/s,
// 1,100-byte packets, a 24-packet keyframe every 2 s) and everyone
// receives the others. b.N is the number of frames per publisher, sent at
// real rate: run it as -benchtime=300x (10 s).
//
// CPU is the whole process's, so it includes the in-process clients'
// receive path (lean pion clients: no interceptors) and the publishers:
// an upper bound of the server's cost per forwarded packet. Latency is
// measured twice: sock-* from the publisher's sendto (filed by its
// socket) to the datagram's arrival on the subscriber's socket (the
// kernel's receive time, SO_TIMESTAMPNS): what the server added; app-*
// from the publisher's stamp (taken before WriteRTP, which encrypts and
// sends in the caller) to the subscriber's reader getting the decrypted
// packet: what pion's write chain and the clients' own receive path, on
// their one core, add on top. The payload carries the publisher's SSRC,
// sequence number and stamp.
//
// With server=process the routers run in a child process (this test
// binary again), so server-cpu-µs/fwd is the server's CPU alone (from
// /proc), while the clients load the other core.
func BenchmarkSession(b *testing.B) {
	for _, server := range []string{"process", "inproc"} {
		for _, tc := range []struct{ groups, size, pubs int }{
			{1, 101, 1}, // 1 publisher × 100 subscribers
			{1, 6, 6},   // 6 × 6
			{10, 4, 4},  // 10 sessions of 4
		} {
			b.Run(fmt.Sprintf("server=%s/groups=%d/size=%d/pubs=%d", server, tc.groups, tc.size, tc.pubs), func(b *testing.B) {
				benchSession(b, server == "process", tc.groups, tc.size, tc.pubs)
			})
		}
	}
}

// latencies collects publisher→subscriber delays, by subscription (the
// SSRC the server sends it on): at the application (app) and at the
// socket (sock).
type latencies struct {
	sent     *arrivals // the publishers' sendto times
	mu       sync.Mutex
	app      map[uint32][]time.Duration
	sock     map[uint32][]time.Duration
	noStamp  int64 // packets whose socket arrival was not filed
	noSendto int64 // packets whose sendto was not filed (the stamp stands in)
	n        atomic.Int64
}

// reset forgets the delays collected so far.
func (l *latencies) reset() {
	l.mu.Lock()
	l.app, l.sock, l.noStamp, l.noSendto = map[uint32][]time.Duration{}, map[uint32][]time.Duration{}, 0, 0
	l.mu.Unlock()
}

// quantiles returns all delays of by sorted, and the highest p99 of any
// one subscription: the subscriber served last in every fan-out would
// show it.
func (l *latencies) quantiles(by map[uint32][]time.Duration) (all []time.Duration, worstP99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range by {
		slices.Sort(d)
		all = append(all, d...)
		worstP99 = max(worstP99, d[int(0.99*float64(len(d)-1))])
	}
	slices.Sort(all)
	return all, worstP99
}

// onPacket reads a received packet's SSRC and send stamp (the header
// parsed by hand: no allocation) and files its delays.
func (l *latencies) onPacket(b []byte, arrival int64) {
	now := time.Now().UnixNano()
	l.n.Add(1)
	ssrc, st, ok := stampOf(b)
	if !ok || st.t == 0 { // a probe (zero payload) delivered late
		return
	}
	sendto, found := l.sent.get(st.ssrc, st.seq)
	l.mu.Lock()
	l.app[ssrc] = append(l.app[ssrc], time.Duration(now-st.t))
	if !found {
		sendto = st.t
		l.noSendto++
	}
	if arrival != 0 {
		l.sock[ssrc] = append(l.sock[ssrc], time.Duration(arrival-sendto))
	} else {
		l.noStamp++
	}
	l.mu.Unlock()
}

// sendStamp is what a payload's last 14 bytes carry: the publisher's SSRC
// and sequence number (to find its sendto time) and the time taken just
// before WriteRTP, in wall-clock ns.
type sendStamp struct {
	ssrc uint32
	seq  uint16
	t    int64
}

const stampBytes = 14

func putStamp(payload []byte, st sendStamp) {
	b := payload[len(payload)-stampBytes:]
	binary.BigEndian.PutUint32(b, st.ssrc)
	binary.BigEndian.PutUint16(b[4:], st.seq)
	binary.BigEndian.PutUint64(b[6:], uint64(st.t))
}

// stampOf returns an RTP packet's SSRC and the send stamp at the end of
// its payload (packets of at least 32 payload bytes; the probes are
// shorter).
func stampOf(b []byte) (ssrc uint32, st sendStamp, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return 0, st, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 && len(b) >= off+4 {
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 {
		end -= int(b[end-1])
	}
	if end-off < 32 {
		return 0, st, false
	}
	p := b[end-stampBytes : end]
	st = sendStamp{binary.BigEndian.Uint32(p), binary.BigEndian.Uint16(p[4:]), int64(binary.BigEndian.Uint64(p[6:]))}
	return binary.BigEndian.Uint32(b[8:]), st, true
}

func benchSession(b *testing.B, remote bool, groups, size, pubs int) {
	lat := &latencies{sent: newArrivals()}
	lat.reset()
	type pubTrack struct {
		track *webrtc.TrackLocalStaticRTP
		ssrc  uint32
	}
	var tracks []pubTrack
	var envs []*env
	var rr *remoteRouter
	var envMu sync.Mutex
	if remote {
		rr = startRemote(b, func(room int) *env {
			envMu.Lock()
			defer envMu.Unlock()
			if room < len(envs) {
				return envs[room]
			}
			return nil
		})
	}
	for g := range groups {
		// Lean clients send no REMB: an initial estimate that fits all
		// their tracks stands in for it.
		e := newEnvTap(b, EngineConfig{}, RouterConfig{InitialBitrate: 20_000_000}, benchReadTap())
		e.lean, e.sent = true, lat.sent
		if remote {
			e.rt = room{rr, g}
		}
		envMu.Lock()
		envs = append(envs, e)
		envMu.Unlock()
		var members []*client
		for i := range size {
			members = append(members, e.join(fmt.Sprintf("g%dp%d", g, i), lat.onPacket))
		}
		for i := range pubs {
			tr := localTrack(b, capVP8, "cam", members[i].id)
			ss := members[i].publish([]webrtc.TrackLocal{tr}, []string{"camera"})
			tracks = append(tracks, pubTrack{tr, uint32(ss[0].GetParameters().Encodings[0].SSRC)})
		}
	}
	// Wait until every subscriber is connected and receives.
	want := int64(groups * pubs * (size - 1))
	var probeSeq uint16
	probe := func() {
		probeSeq++
		for _, t := range tracks {
			p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: probeSeq,
				Timestamp: uint32(probeSeq) * 3000}, Payload: make([]byte, 40)}
			p.Payload[0] = 0x10 // keyframe start
			_ = t.track.WriteRTP(p)
		}
	}
	joined := time.Now()
	eventually(b, 60*time.Second, "every subscriber connected", func() bool {
		probe()
		lat.n.Store(0)
		probe()
		time.Sleep(100 * time.Millisecond)
		return lat.n.Load() >= want
	})
	b.Logf("%d subscriptions receiving %.1f s after the joins", want, time.Since(joined).Seconds())
	lat.reset()
	lat.n.Store(0)

	srcs := make([]*vp8Source, len(tracks))
	for i := range srcs {
		srcs[i] = &vp8Source{width: 640, height: 360, keyEvery: 60, seq: probeSeq + 1, ts: uint32(probeSeq+1) * 3000}
	}
	b.ResetTimer()
	start, cpu := time.Now(), testutil.CPUTime()
	var serverCPU time.Duration
	if remote {
		serverCPU = rr.cpu()
	}
	var sent atomic.Int64
	var wg sync.WaitGroup
	for k, t := range tracks {
		s := srcs[k]
		wg.Go(func() {
			// Paced like a browser: a frame's packets 1 ms apart, so a
			// keyframe is a 24 ms burst rather than one instant.
			tk := time.NewTicker(time.Second / 30)
			defer tk.Stop()
			for range b.N {
				<-tk.C
				s.frameSize = 4*vp8PayloadMax - 100
				if s.frame%s.keyEvery == 0 {
					s.frameSize = 24 * vp8PayloadMax
				}
				for j, p := range s.next() {
					if j > 0 {
						time.Sleep(time.Millisecond)
					}
					putStamp(p.Payload, sendStamp{t.ssrc, p.SequenceNumber, time.Now().UnixNano()})
					_ = t.track.WriteRTP(p)
					sent.Add(1)
				}
			}
		})
	}
	wg.Wait()
	goroutines := -1
	if remote {
		goroutines = rr.goroutineCount()
	}
	time.Sleep(200 * time.Millisecond) // the last packets in flight
	wall, used := time.Since(start), testutil.CPUTime()-cpu
	if remote {
		serverCPU = rr.cpu() - serverCPU
	}
	b.StopTimer()
	fwd := lat.n.Load()
	d, worst := lat.quantiles(lat.app)
	ds, worstSock := lat.quantiles(lat.sock)
	var in, out uint64
	for _, e := range envs {
		_, ups := e.router.snapshot()
		for _, u := range ups {
			in += u.layers[0].packets.Load()
			for _, d := range *u.subs.Load() {
				d.mu.Lock()
				out += d.packets
				d.mu.Unlock()
			}
		}
	}
	b.Logf("server read %d, wrote %d; clients got %d", in, out, fwd)
	// In-process clients drop some of a keyframe burst when their socket
	// buffers overflow; the loss is reported, and only a broken path fails.
	// A one-frame run (CI's -benchtime=1x) is a single keyframe burst:
	// there only "something arrived" is asked.
	total := sent.Load() * int64(size-1)
	if len(d) == 0 || (b.N >= 30 && fwd < total*80/100) {
		b.Fatalf("forwarded %d packets of %d", fwd, total)
	}
	if len(ds) == 0 {
		b.Fatalf("no packet's socket arrival was filed (%d not)", lat.noStamp)
	}
	b.ReportMetric(100*float64(total-fwd)/float64(total), "loss-%")
	q := func(d []time.Duration, f float64) float64 {
		return float64(d[int(f*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(fwd)/wall.Seconds(), "fwd-pkt/s")
	b.ReportMetric(float64(fwd)*1100*8/wall.Seconds()/1e6, "Mbit/s")
	b.ReportMetric(float64(used.Microseconds())/float64(fwd), "cpu-µs/fwd")
	b.ReportMetric(used.Seconds()/wall.Seconds(), "cores")
	if remote {
		b.ReportMetric(float64(serverCPU.Microseconds())/float64(fwd), "server-cpu-µs/fwd")
		b.ReportMetric(serverCPU.Seconds()/wall.Seconds(), "server-cores")
	}
	if remote {
		b.ReportMetric(float64(goroutines), "server-goroutines")
	}
	b.ReportMetric(q(ds, 0.5), "sock-p50-ms")
	b.ReportMetric(q(ds, 0.99), "sock-p99-ms")
	b.ReportMetric(float64(worstSock.Microseconds())/1000, "worst-sub-sock-p99-ms")
	b.ReportMetric(q(d, 0.5), "app-p50-ms")
	b.ReportMetric(q(d, 0.99), "app-p99-ms")
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-sub-app-p99-ms")
	b.ReportMetric(100*float64(lat.noStamp)/float64(max(1, fwd)), "nostamp-%")
	b.ReportMetric(100*float64(lat.noSendto)/float64(max(1, fwd)), "nosendto-%")
	b.ReportMetric(0, "ns/op")
}
