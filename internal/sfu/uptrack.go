package sfu

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// maxLayers is the number of simulcast layers a track may have.
const maxLayers = 3

// keyframeInterval is the shortest time between two keyframe requests
// (PLI) sent to a publisher for one layer: requests from many subscribers
// in a burst become one, and a keyframe serves them all.
const keyframeInterval = 500 * time.Millisecond

// upTrack is one track published by a participant, with its simulcast
// layers, and the downTracks subscribed to it.
type upTrack struct {
	id        string // peer id + "/" + the publisher's track id
	publisher *participant
	source    string
	kind      webrtc.RTPCodecType
	codec     webrtc.RTPCodecParameters
	isVP8     bool
	isH264    bool

	layers [maxLayers]*layer // fixed at creation; layer contents change
	// subs is the fan-out list, copied on write so the hot path reads it
	// without a lock.
	subs   atomic.Pointer[[]*downTrack]
	subsMu sync.Mutex // serialises writers of subs

	level atomic.Int32 // smoothed audio loudness, 0 (silence) … 127×16

	// mid is the publisher's m-line of the track (its publish connection's
	// newest), guarded by the publisher's mu.
	mid string
	// dyn is the dynacast state, owned by the router's tick.
	dyn dynacast

	// workers is how many goroutines may share one packet's fan-out (the
	// process's GOMAXPROCS at creation; 0 or 1: the reader alone).
	workers int
}

// layer is one simulcast encoding of an upTrack (or its only one).
type layer struct {
	index int
	cache *packetCache // nil for audio

	mu     sync.Mutex // guards the fields below
	rid    string
	ssrc   uint32
	gen    uint32 // bumped when a new remote track feeds this layer
	pc     *webrtc.PeerConnection
	rtcp   *rtcpWriter // pc's router RTCP (keyframe requests)
	width  uint16
	height uint16

	lastPLI atomic.Int64     // unix nanos
	bytes   [4]atomic.Uint64 // by VP8 temporal id (3: none/other)
	packets atomic.Uint64
	// rates, written and read by the router's tick only: a sliding window
	// of rateWindow ticks, by temporal id.
	rate     [4]float64 // bits/s over the window
	peak     [4]float64 // rate, following rises at once and falls slowly
	lastSeen [4]uint64
	window   [rateWindow][4]uint64 // bytes per tick
	windowDt [rateWindow]time.Duration
	ticks    int // ticks measured so far
	// lastRate is the layer's peak rate (all temporal layers) when it last
	// flowed: what reactivating a paused layer would cost.
	lastRate float64
}

func newUpTrack(id string, pub *participant, source string, remote *webrtc.TrackRemote) *upTrack {
	c := remote.Codec()
	u := &upTrack{
		id: id, publisher: pub, source: source, kind: remote.Kind(), codec: c,
		isVP8:   strings.EqualFold(c.MimeType, webrtc.MimeTypeVP8),
		isH264:  strings.EqualFold(c.MimeType, webrtc.MimeTypeH264),
		workers: runtime.GOMAXPROCS(0),
	}
	for i := range u.layers {
		u.layers[i] = &layer{index: i}
		if u.kind == webrtc.RTPCodecTypeVideo {
			u.layers[i].cache = &packetCache{}
		}
	}
	u.subs.Store(&[]*downTrack{})
	return u
}

// ridIndex maps the rids pages use to layer indexes, low to high.
func ridIndex(rid string) int {
	switch strings.ToLower(rid) {
	case "", "q", "l", "low", "0":
		return 0
	case "h", "m", "mid", "1":
		return 1
	case "f", "high", "2":
		return 2
	}
	return -1
}

// attach makes remote the source of layer l and returns its generation.
func (l *layer) attach(remote *webrtc.TrackRemote, pc *webrtc.PeerConnection, w *rtcpWriter) uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	l.rid = remote.RID()
	l.ssrc = uint32(remote.SSRC())
	l.pc, l.rtcp = pc, w
	return l.gen
}

func (l *layer) source() (ssrc uint32, gen uint32, pc *webrtc.PeerConnection) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ssrc, l.gen, l.pc
}

// requestKeyframe sends a PLI for this layer to its publisher, at most once
// per keyframeInterval.
func (l *layer) requestKeyframe(now time.Time) {
	last := l.lastPLI.Load()
	if now.UnixNano()-last < int64(keyframeInterval) || !l.lastPLI.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	l.mu.Lock()
	ssrc, w := l.ssrc, l.rtcp
	l.mu.Unlock()
	if w == nil || ssrc == 0 {
		return
	}
	_ = w.write([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

// rateWindow is how many ticks a layer's rate is measured over (1 s).
const rateWindow = 4

// active reports whether the layer carried media in the last tick and has
// been measured over a whole window, so its rate means something.
func (l *layer) active() bool {
	if l.ticks < rateWindow {
		return false
	}
	last := l.window[(l.ticks-1)%rateWindow]
	return last[0]+last[1]+last[2]+last[3] > 0
}

// peakDecay is how fast a layer's peak rate falls per tick (about 20 %
// a second).
const peakDecay = 0.95

// bitrate is the layer's peak rate with temporal layers up to maxTID.
func (l *layer) bitrate(maxTID uint8) float64 {
	r := l.peak[3]
	for t := 0; t <= int(maxTID) && t < 3; t++ {
		r += l.peak[t]
	}
	return r
}

// hasTemporal reports whether the publisher sends VP8 temporal layers.
func (l *layer) hasTemporal() bool { return l.rate[1]+l.rate[2] > 0 }

// measure updates the rates from the byte counters; dt is the time since
// the last call. A layer that sent nothing in the last tick starts over.
func (l *layer) measure(dt time.Duration) {
	i := l.ticks % rateWindow
	var sum uint64
	for t := range l.rate {
		b := l.bytes[t].Load()
		l.window[i][t] = b - l.lastSeen[t]
		l.lastSeen[t] = b
		sum += l.window[i][t]
	}
	l.windowDt[i] = dt
	if sum == 0 {
		l.ticks = 0
		l.rate, l.peak = [4]float64{}, [4]float64{}
		return
	}
	l.ticks++
	n := min(l.ticks, rateWindow)
	var span time.Duration
	var bytes [4]uint64
	for k := range n {
		span += l.windowDt[k]
		for t := range bytes {
			bytes[t] += l.window[k][t]
		}
	}
	for t := range l.rate {
		l.rate[t] = float64(bytes[t]) * 8 / span.Seconds()
		// Allocation uses the peak, so that a layer whose rate dips for a
		// moment (a slow second at the encoder) is not chosen above the
		// estimate only to be dropped again.
		l.peak[t] = max(l.rate[t], l.peak[t]*peakDecay)
	}
	if l.ticks >= rateWindow {
		l.lastRate = l.bitrate(allTIDs)
	}
}

func (u *upTrack) addSub(d *downTrack) {
	u.subsMu.Lock()
	defer u.subsMu.Unlock()
	old := *u.subs.Load()
	n := make([]*downTrack, 0, len(old)+1)
	n = append(n, old...)
	n = append(n, d)
	u.subs.Store(&n)
}

func (u *upTrack) removeSub(d *downTrack) {
	u.subsMu.Lock()
	defer u.subsMu.Unlock()
	old := *u.subs.Load()
	n := make([]*downTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			n = append(n, x)
		}
	}
	u.subs.Store(&n)
}

// info reads what the forwarder needs from a packet of this track.
func (u *upTrack) info(payload []byte) frameInfo {
	switch {
	case u.kind == webrtc.RTPCodecTypeAudio:
		return frameInfo{keyframe: true} // any audio packet is a place to start
	case u.isVP8:
		return vp8Info(payload)
	case u.isH264:
		return h264Info(payload)
	}
	return frameInfo{}
}

// readLayer is the hot path: it reads one remote track until it ends,
// caches each packet and hands it to every subscriber. With a sink, the
// read tap delivers the layer's packets (srtpread.go) and pion's reader
// only those the tap left it; the two take turns at handle, which also
// keeps the feedback's per-stream state (in) to one packet at a time.
func (u *upTrack) readLayer(l *layer, remote *webrtc.TrackRemote, in *ingress, sink *tapSink) {
	if in.fb != nil && in.rx != nil {
		in.fb.add(in.rx)
		defer in.fb.remove(in.rx)
	}
	fan := newFanPool(u.workers - 1)
	defer fan.close()
	var mu sync.Mutex // one packet at a time: fan and the layer's sequence of packets are shared
	handle := func(p *rtp.Packet, raw []byte, now int64) {
		mu.Lock()
		u.handle(fan, l, in, p, raw, now)
		mu.Unlock()
	}
	if sink != nil {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { sink.run(stop, handle) })
		defer func() {
			sink.remove()
			close(stop)
			wg.Wait()
		}()
	}
	readPion(remote, handle)
}

// readPion reads remote through pion until it ends.
func readPion(remote *webrtc.TrackRemote, handle func(p *rtp.Packet, raw []byte, now int64)) {
	buf := make([]byte, maxPacket)
	var p rtp.Packet
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		handle(&p, buf[:n], time.Now().UnixNano())
	}
}

// handle accounts (for the publisher's feedback), caches, measures and
// fans out one packet that arrived at now (unix nanos).
func (u *upTrack) handle(fan *fanPool, l *layer, in *ingress, p *rtp.Packet, raw []byte, now int64) {
	in.onPacket(&p.Header, now)
	fi := u.info(p.Payload)
	tid := 3
	if u.isVP8 && len(p.Payload) > 0 {
		tid = int(fi.tid)
	}
	l.bytes[tid].Add(uint64(len(raw)))
	n := l.packets.Add(1)
	if l.cache != nil {
		l.cache.store(p.SequenceNumber, raw)
	}
	if fi.height != 0 {
		l.mu.Lock()
		l.width, l.height = fi.width, fi.height
		l.mu.Unlock()
	}
	if in.audioLevelID != 0 {
		u.noteLevel(p, in.audioLevelID)
	}
	subs := *u.subs.Load()
	u.fanOut(fan, subs, rotation(n, len(subs)), l, in.gen, p, fi, now)
}

// rotation is where packet number n's fan-out starts in a list of subs:
// it moves on by one each packet, so that no subscriber is always served
// last in a keyframe burst (the last one's wait is the p99 added latency).
func rotation(n uint64, subs int) int {
	if subs < 2 {
		return 0
	}
	return int(n % uint64(subs))
}

// fanOutChunk is the fewest subscribers per goroutine in one packet's
// fan-out: below that, waking a helper costs more than it saves.
const fanOutChunk = 16

// fanPool is one layer reader's fan-out helpers. They live as long as the
// reader, which closes the pool and waits for them when it ends, so no
// goroutine is started per packet. A nil pool fans out serially.
type fanPool struct {
	jobs chan *fanJob
	wg   sync.WaitGroup
}

// fanJob is one packet's fan-out, fresh per packet: a helper that picks it
// up late finds every subscriber taken and touches nothing else.
type fanJob struct {
	subs  []*downTrack
	start int // subs[start] is served first, then on in a circle
	l     *layer
	gen   uint32
	p     *rtp.Packet
	fi    frameInfo
	now   int64
	r     *Router        // lends the send scratch
	next  atomic.Int32   // index of the next subscriber to take
	done  sync.WaitGroup // one count per subscriber
}

// newFanPool starts n helpers (none if n < 1).
func newFanPool(n int) *fanPool {
	if n < 1 {
		return nil
	}
	f := &fanPool{jobs: make(chan *fanJob, n)}
	for range n {
		f.wg.Go(func() {
			for j := range f.jobs {
				j.work()
			}
		})
	}
	return f
}

// close stops the helpers and waits for them.
func (f *fanPool) close() {
	if f != nil {
		close(f.jobs)
		f.wg.Wait()
	}
}

// work forwards the packet to subscribers taken one at a time, so whoever
// runs takes more: a helper whose core is busy costs the reader nothing.
func (j *fanJob) work() {
	buf := j.r.sendBuf()
	defer j.r.putBuf(buf)
	for {
		i := int(j.next.Add(1)) - 1
		if i >= len(j.subs) {
			return
		}
		if i += j.start; i >= len(j.subs) {
			i -= len(j.subs)
		}
		j.subs[i].forward(j.l, j.gen, j.p, j.fi, j.now, buf)
		j.done.Done()
	}
}

// fanOut hands one packet to every subscriber. A large fan-out (a keyframe
// burst to a class of 100) is shared with the pool's helpers, so that the
// last subscriber does not wait for the 99 before it on one core: that
// wait is the p99 added latency. Each downTrack has its own lock and
// writer, and p is only read, so the parts are independent; fanOut returns
// once every subscriber has its packet, because the reader reuses p and
// its buffer next. Subscribers are served from subs[start] on, in a circle.
func (u *upTrack) fanOut(f *fanPool, subs []*downTrack, start int, l *layer, gen uint32, p *rtp.Packet, fi frameInfo, now int64) {
	helpers := 0
	if f != nil {
		helpers = min(cap(f.jobs), len(subs)/fanOutChunk-1)
	}
	r := u.publisher.r
	if helpers < 1 {
		buf := r.sendBuf()
		defer r.putBuf(buf)
		for _, d := range subs[start:] {
			d.forward(l, gen, p, fi, now, buf)
		}
		for _, d := range subs[:start] {
			d.forward(l, gen, p, fi, now, buf)
		}
		return
	}
	j := &fanJob{subs: subs, start: start, l: l, gen: gen, p: p, fi: fi, now: now, r: r}
	j.done.Add(len(subs))
	for range helpers {
		select {
		case f.jobs <- j:
		default: // helpers still busy with older jobs: do without
		}
	}
	j.work()
	j.done.Wait()
}

// noteLevel folds the RFC 6464 audio level of p into the track's smoothed
// loudness (127 − level in −dBov, ×16 fixed point).
func (u *upTrack) noteLevel(p *rtp.Packet, id uint8) {
	ext := p.GetExtension(id)
	if len(ext) < 1 {
		return
	}
	loud := int32(127-ext[0]&0x7f) * 16
	old := u.level.Load()
	u.level.Store(old + (loud-old)/8)
}
