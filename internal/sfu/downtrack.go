package sfu

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// seqMapSize is how far back (in packets) the rewriting remembers
// sequence numbers: late upstream packets and subscribers' NACKs older than
// that are not answered.
const (
	seqMapSize = 1024
	seqMask    = seqMapSize - 1
	// maxGap is the largest upstream gap for which outgoing sequence
	// numbers are kept free, so that late packets still fit in; a larger
	// jump is a discontinuity.
	maxGap = 256
)

// noLayer marks "nothing" for a downTrack's current or target layer.
const noLayer = -1

// allTIDs lets every temporal layer through.
const allTIDs = 3

// downTrack sends one upTrack to one subscriber. It is a webrtc.TrackLocal
// of its own (not a TrackLocalStaticRTP) because each subscriber gets its
// own sequence numbers and timestamps: they stay continuous when the
// forwarded layer or the publisher's peer connection changes.
type downTrack struct {
	up  *upTrack
	sub *participant

	reqHeight atomic.Int32 // tile height the page asked for; -1: no limit, 0: hidden
	need      atomic.Int32 // highest layer this subscriber needs (dynacast); noLayer: none
	// ready mirrors sub.subReady (set with it, under the participant's
	// lock): the hot path reads it here, not from the participant's struct,
	// one cache line fewer per packet and subscriber.
	ready atomic.Bool

	path *directPath // the subscribe connection's own write path; nil: pion's

	// What forward touches per packet comes first, together, so that one
	// packet's fan-out to 100 subscribers reads a few consecutive cache
	// lines of each: before, the header scratch, the picture-id offsets
	// and the counters each sat kilobytes apart, behind the arrays.
	mu     sync.Mutex // guards everything below
	writer webrtc.TrackLocalWriter
	// own encrypts and sends this SSRC's RTP instead of writer, once
	// decided (srtpwrite.go); decided is set before the first packet.
	own     *ownWriter
	decided bool
	ssrc    uint32
	pt      uint8
	clock   uint32
	sender  *webrtc.RTPSender

	target  int   // layer wanted; noLayer: paused
	maxTID  uint8 // highest VP8 temporal layer sent
	wantTID uint8 // maxTID to reach: lowered at once, raised at a TID 0 frame
	cur     int   // layer being forwarded; noLayer: none yet
	curGen  uint32

	started   bool
	nextOut   uint16 // next outgoing sequence number
	lastSrc   uint16 // newest upstream sequence number seen on cur
	tsOffset  uint32
	lastOutTS uint32
	lastSent  int64 // unix nanos when lastOutTS went out
	frameAt   int64 // unix nanos when lastOutTS's first packet went out (sender reports)
	// VP8 picture id and TL0PICIDX, rewritten like sequence numbers so
	// that a layer switch does not make them jump (libwebrtc drops frames
	// whose picture id goes backwards).
	pidOffset uint16
	tl0Offset uint8
	lastPid   uint16
	lastTL0   uint8
	havePid   bool

	packets, bytes, nacked, resent uint64
	octets                         uint64 // payload bytes sent, for sender reports

	srcMap [seqMapSize]seqEntry  // by upstream seq: its outgoing seq
	hist   [seqMapSize]histEntry // by outgoing seq: where it came from
	pay    [maxPacket]byte       // scratch for a payload whose VP8 picture id is rewritten
	rtx    [maxPacket]byte       // scratch for retransmissions
	rtxPkt rtp.Packet
	rtxBuf *sendBuf // the retransmissions' send scratch, made at the first
}

type seqEntry struct {
	src, out uint16
	state    uint8
}

const (
	seqEmpty uint8 = iota
	seqReserved
	seqSent
	seqDropped
)

type histEntry struct {
	out, src  uint16
	layer     int8
	gen       uint32
	tsOffset  uint32
	pidOffset uint16
	tl0Offset uint8
	valid     bool
}

func newDownTrack(up *upTrack, sub *participant) *downTrack {
	d := &downTrack{up: up, sub: sub, target: 0, cur: noLayer, maxTID: allTIDs, wantTID: allTIDs}
	d.reqHeight.Store(-1)
	return d
}

// TrackLocal.

func (d *downTrack) ID() string                { return d.up.id }
func (d *downTrack) RID() string               { return "" }
func (d *downTrack) StreamID() string          { return d.up.publisher.id }
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.up.kind }

var errNoCodec = errors.New("sfu: the subscriber accepts no codec of this track")

// Bind picks the subscriber's payload type for the track's codec.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	want := d.up.codec
	var pick *webrtc.RTPCodecParameters
	for _, c := range ctx.CodecParameters() {
		if !strings.EqualFold(c.MimeType, want.MimeType) {
			continue
		}
		if pick == nil || c.SDPFmtpLine == want.SDPFmtpLine {
			c := c
			pick = &c
		}
	}
	if pick == nil {
		return webrtc.RTPCodecParameters{}, errNoCodec
	}
	d.mu.Lock()
	d.writer = ctx.WriteStream()
	if ssrc := uint32(ctx.SSRC()); ssrc != d.ssrc {
		d.own, d.decided = nil, false // a new SSRC: nothing sent on it yet
	}
	d.ssrc = uint32(ctx.SSRC())
	d.pt = uint8(pick.PayloadType)
	d.clock = pick.ClockRate
	t := d.target
	d.mu.Unlock()
	d.requestKeyframe(t)
	return *pick, nil
}

func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	d.writer = nil
	d.mu.Unlock()
	return nil
}

// requestKeyframe asks the publisher for a keyframe on layer i.
func (d *downTrack) requestKeyframe(i int) {
	if i < 0 || i >= maxLayers || d.up.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	d.up.layers[i].requestKeyframe(time.Now())
}

// setTarget chooses the layer and temporal limit to forward; it returns
// whether the downTrack now waits for a keyframe on another layer.
func (d *downTrack) setTarget(layer int, maxTID uint8) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.target, d.wantTID = layer, maxTID
	if maxTID < d.maxTID {
		d.maxTID = maxTID // dropping upper temporal layers is safe anywhere
	}
	if layer == noLayer {
		d.cur = noLayer // stop at once; restart on a keyframe
	}
	return layer != noLayer && layer != d.cur
}

// waiting returns the layer the downTrack waits a keyframe for, or noLayer.
func (d *downTrack) waiting() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writer == nil || d.target == d.cur {
		return noLayer
	}
	return d.target
}

// forward rewrites and sends one upstream packet, if it is for this
// subscriber. Called by the upstream readers (one per layer).
// buf is the caller's send scratch.
func (d *downTrack) forward(l *layer, gen uint32, p *rtp.Packet, fi frameInfo, now int64, buf *sendBuf) {
	if !d.ready.Load() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writer == nil {
		return
	}
	if l.index != d.cur || gen != d.curGen {
		if l.index != d.target || !fi.keyframe {
			return
		}
		d.switchTo(l.index, gen, p, fi, now)
	}
	if d.wantTID > d.maxTID && fi.start && fi.tid == 0 {
		d.maxTID = d.wantTID // frames above refer to this one: safe to add
	}
	drop := len(p.Payload) == 0 || (d.up.isVP8 && fi.tid > d.maxTID)
	out, ok := d.mapSeq(p.SequenceNumber, drop)
	if !ok {
		return
	}
	ts := p.Timestamp + d.tsOffset
	newest := int32(ts-d.lastOutTS) >= 0
	if int32(ts-d.lastOutTS) > 0 {
		d.frameAt = now // a frame's first packet: what a sender report maps
	}
	if newest {
		d.lastOutTS, d.lastSent = ts, now
	}
	d.hist[out&seqMask] = histEntry{out: out, src: p.SequenceNumber, layer: int8(l.index), gen: gen,
		tsOffset: d.tsOffset, pidOffset: d.pidOffset, tl0Offset: d.tl0Offset, valid: true}
	payload := d.rewritePictureID(p.Payload, fi, d.pidOffset, d.tl0Offset, newest)
	d.write(p, payload, out, ts, buf)
}

// rewritePictureID returns the payload to send: p itself, or for VP8 with
// a picture id a copy with the id and TL0PICIDX moved by the offsets.
func (d *downTrack) rewritePictureID(p []byte, fi frameInfo, pidOff uint16, tl0Off uint8, newest bool) []byte {
	if fi.pidAt == 0 && fi.tl0At == 0 {
		return p
	}
	pid, tl0 := vp8PictureID(p, fi)
	pid, tl0 = (pid+pidOff)&pidMask(fi), tl0+tl0Off
	if newest {
		d.lastPid, d.lastTL0, d.havePid = pid, tl0, true
	}
	if pidOff == 0 && tl0Off == 0 {
		return p
	}
	n := copy(d.pay[:], p)
	setVP8PictureID(d.pay[:n], fi, pid, tl0)
	return d.pay[:n]
}

func pidMask(fi frameInfo) uint16 {
	if fi.pid15 {
		return 0x7fff
	}
	return 0x7f
}

// write sends p with the subscriber's SSRC, payload type, sequence number
// and timestamp. Header extensions are dropped: their ids were negotiated
// with the publisher, not with this subscriber. buf is scratch for the
// header and the encrypted packet, shared by every downTrack its owner
// (one fan-out goroutine) writes to, so that it stays in the CPU's cache.
func (d *downTrack) write(p *rtp.Packet, payload []byte, seq uint16, ts uint32, buf *sendBuf) {
	h := &buf.hdr
	*h = rtp.Header{
		Version: 2, Marker: p.Marker, PayloadType: d.pt, SequenceNumber: seq,
		Timestamp: ts, SSRC: d.ssrc, Extensions: h.Extensions[:0],
	}
	if !d.decided {
		var how writerDecision
		d.own, how = d.path.newWriter()
		if how == writeLater {
			return // the transport is not up: pion would drop it too
		}
		d.decided = true
		c := d.sub.r.counters()
		if how == writeOwn {
			c.ownWriters.Add(1)
		} else {
			c.pionWriters.Add(1)
		}
	}
	var n int
	var err error
	if d.own != nil {
		n, err = d.own.write(h, payload, buf)
	} else {
		n, err = d.writer.WriteRTP(h, payload)
	}
	if err == nil {
		d.packets++
		d.bytes += uint64(n)
		d.octets += uint64(len(payload))
	}
}

// switchTo starts forwarding another layer (or a new source of the same
// one) at a keyframe, keeping the outgoing numbering continuous.
func (d *downTrack) switchTo(index int, gen uint32, p *rtp.Packet, fi frameInfo, now int64) {
	if !d.started {
		d.started = true
		d.nextOut = uint16(rand.Uint32())
		d.tsOffset = rand.Uint32() - p.Timestamp
		d.lastOutTS = p.Timestamp + d.tsOffset
		d.lastSent, d.frameAt = now, now
	} else {
		// Continue the timeline: the new source's timestamp maps to the last
		// sent one plus the wall time elapsed since.
		elapsed := max(now-d.lastSent, 0)
		delta := uint32(uint64(elapsed) * uint64(d.clock) / uint64(time.Second))
		d.tsOffset = d.lastOutTS + max(delta, 1) - p.Timestamp
	}
	if d.havePid && fi.pidAt != 0 {
		pid, tl0 := vp8PictureID(p.Payload, fi)
		d.pidOffset = d.lastPid + 1 - pid
		d.tl0Offset = d.lastTL0 + 1 - tl0
	}
	d.cur, d.curGen = index, gen
	d.lastSrc = p.SequenceNumber - 1
	clear(d.srcMap[:])
}

// mapSeq gives the outgoing sequence number of upstream src, keeping room
// for upstream packets that are late; ok is false if src is not sent.
func (d *downTrack) mapSeq(src uint16, drop bool) (uint16, bool) {
	diff := src - d.lastSrc
	if diff == 0 || diff >= 0x8000 { // a late or repeated packet
		e := &d.srcMap[src&seqMask]
		if e.src != src || e.state != seqReserved || drop {
			return 0, false
		}
		e.state = seqSent
		return e.out, true
	}
	if diff > 1 && diff <= maxGap { // keep numbers for the missing ones
		for s := d.lastSrc + 1; s != src; s++ {
			d.srcMap[s&seqMask] = seqEntry{src: s, out: d.nextOut, state: seqReserved}
			d.nextOut++
		}
	}
	d.lastSrc = src
	if drop {
		d.srcMap[src&seqMask] = seqEntry{src: src, state: seqDropped}
		return 0, false
	}
	out := d.nextOut
	d.nextOut++
	d.srcMap[src&seqMask] = seqEntry{src: src, out: out, state: seqSent}
	return out, true
}

// resend answers a subscriber's NACK for outgoing seq from the layer cache.
func (d *downTrack) resend(seq uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nacked++
	c := d.sub.r.counters()
	c.nacks.Add(1)
	e := d.hist[seq&seqMask]
	if !e.valid || e.out != seq || d.writer == nil || e.layer < 0 {
		return
	}
	l := d.up.layers[e.layer]
	if l.cache == nil {
		return
	}
	if _, gen, _ := l.source(); gen != e.gen {
		return
	}
	n := l.cache.get(e.src, d.rtx[:])
	if n == 0 || d.rtxPkt.Unmarshal(d.rtx[:n]) != nil {
		return
	}
	d.resent++
	c.resent.Add(1)
	var fi frameInfo
	if d.up.isVP8 {
		fi = vp8Info(d.rtxPkt.Payload)
	}
	payload := d.rewritePictureID(d.rtxPkt.Payload, fi, e.pidOffset, e.tl0Offset, false)
	if d.rtxBuf == nil {
		d.rtxBuf = new(sendBuf)
	}
	d.write(&d.rtxPkt, payload, seq, d.rtxPkt.Timestamp+e.tsOffset, d.rtxBuf)
}

// readRTCP handles what the subscriber says about this track until the
// sender stops: pion hands this reader the packets of a compound that name
// the track's SSRC. With the read tap serving the connection (srtcpread.go)
// it sees only what the tap leaves to pion.
func (d *downTrack) readRTCP(sender *webrtc.RTPSender) {
	fb := subFeedback{bwe: d.sub.bwe, track: d.named}
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		fb.handle(pkts, time.Now())
	}
}

// named is d if ssrc is its SSRC, else nil: pion's per-track reader answers
// for its own track only.
func (d *downTrack) named(ssrc uint32) *downTrack {
	if ssrc == d.ssrcOf() {
		return d
	}
	return nil
}

// subFeedback is where a subscriber's RTCP goes: the downTrack of a media
// SSRC (track; nil for one not its own) and the subscriber's estimate.
// pion's per-track readers and the read tap's per-connection handler
// (participant.subRTCP) both hand it their packets.
type subFeedback struct {
	bwe   *bwe
	track func(ssrc uint32) *downTrack
}

// handle acts on what a subscriber says: NACKs are answered from the
// cache, keyframe requests go to the publisher, REMB and receiver reports
// feed the estimate.
func (f subFeedback) handle(pkts []rtcp.Packet, now time.Time) {
	for _, pkt := range pkts {
		switch p := pkt.(type) {
		case *rtcp.TransportLayerNack:
			if d := f.track(p.MediaSSRC); d != nil {
				for _, n := range p.Nacks {
					for _, seq := range n.PacketList() {
						d.resend(seq)
					}
				}
			}
		case *rtcp.PictureLossIndication:
			if d := f.track(p.MediaSSRC); d != nil {
				d.keyframeRequested()
			}
		case *rtcp.FullIntraRequest:
			for _, e := range p.FIR {
				if d := f.track(e.SSRC); d != nil {
					d.keyframeRequested()
				}
			}
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			f.bwe.remb(float64(p.Bitrate), now)
		case *rtcp.ReceiverReport:
			for _, r := range p.Reports {
				if f.track(r.SSRC) != nil {
					f.bwe.loss(r.FractionLost, now)
				}
			}
		}
	}
}

// keyframeRequested passes a subscriber's PLI or FIR on to the publisher
// of the layer it receives (or waits for).
func (d *downTrack) keyframeRequested() {
	d.mu.Lock()
	cur := d.cur
	if cur == noLayer {
		cur = d.target
	}
	d.mu.Unlock()
	d.requestKeyframe(cur)
}

func (d *downTrack) ssrcOf() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ssrc
}

// ntpEpochOffset is the number of seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2_208_988_800

// toNTP converts unix nanoseconds to a 64-bit NTP timestamp.
func toNTP(nanos int64) uint64 {
	secs, frac := uint64(nanos/1e9)+ntpEpochOffset, uint64(nanos%1e9)
	return secs<<32 | frac<<32/1e9
}

// senderReport is the RTCP sender report of this track at now (unix
// nanos), from its own counters: the RTP time of the newest frame sent,
// advanced by the wall time since its first packet went out (what pion's
// report interceptor did, without its lock on every packet). ok is false
// until something was sent (RFC 3550 6.4: such a source sends no SR).
func (d *downTrack) senderReport(now int64) (sr rtcp.SenderReport, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writer == nil || d.packets == 0 || d.clock == 0 {
		return sr, false
	}
	elapsed := uint64(max(now-d.frameAt, 0))
	return rtcp.SenderReport{
		SSRC:        d.ssrc,
		NTPTime:     toNTP(now),
		RTPTime:     d.lastOutTS + uint32(elapsed*uint64(d.clock)/uint64(time.Second)),
		PacketCount: uint32(d.packets),
		OctetCount:  uint32(d.octets),
	}, true
}

// state returns the forwarding state, for the allocator and tests.
func (d *downTrack) state() (cur, target int, maxTID uint8) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur, d.target, d.maxTID
}
