package sfu

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/rehabrtc/rehabrtc/internal/rawudp"
)

// The publish side's own SRTP read path, the sibling of the write path
// (srtpwrite.go). Through pion, every upstream packet crossed the UDP
// mux's reader goroutine, its packetio buffer, the ICE conn, pion/mux's
// demux, the SRTP session, the read stream's buffer, the interceptors and
// TrackRemote.Read: about 35 CPU-µs and three or four goroutine hand-offs
// per packet. With a ReadTap, the mux socket's reader (MuxConnWith) looks
// at each datagram first: SRTP from the selected remote address of a
// publish connection, of an SSRC that connection's layers already read,
// is queued (one copy into a pooled buffer) to that layer's sink; its
// layer goroutine decrypts it with an SRTP context of its own (the
// connection's receive keys, srtpkeys.go) and hands it to the forwarder.
// Everything else (STUN, DTLS, RTCP of a connection whose SRTCP the tap
// does not serve (srtcpread.go), an SSRC pion has not announced yet, other
// addresses) goes to pion unchanged, so OnTrack still sees each
// SSRC's first packets, and a packet the sink cannot queue goes to pion
// too: the layer's pion reader keeps running beside the sink.

// tapQueue is how many packets a sink holds: a keyframe burst of a
// high layer is about 100 packets.
const tapQueue = 256

// maxTapFailures is how many packets in a row a sink may fail to
// authenticate before it hands its SSRC back to pion (whose context
// followed the stream from its first packet: the rollover counter is
// the only state ours can get wrong).
const maxTapFailures = 64

// recvReplayWindow is the SRTP replay window of our receive contexts.
const recvReplayWindow = 1024

var errTapTaken = errors.New("sfu: the read tap already serves a socket")

// ReadTap takes publishers' SRTP out of the SFU's UDP socket before pion's
// ICE UDP mux sees it. The process makes one, reads the socket through it
// (MuxConnWith) and gives it to the engine (EngineConfig.ReadTap).
type ReadTap struct {
	attached atomic.Bool // a MuxConn reads through it: only then can it take anything
	v4       bool        // the socket's family; set once by attach

	mu    sync.Mutex                                   // serialises writers of addrs
	addrs atomic.Pointer[map[netip.AddrPort]*recvPath] // copied on write: the reader takes no lock

	pool sync.Pool // *tapPacket
}

// NewReadTap makes a tap that takes nothing until a socket reads through
// it and a publish connection registers.
func NewReadTap() *ReadTap {
	t := &ReadTap{}
	t.pool.New = func() any { return new(tapPacket) }
	t.addrs.Store(&map[netip.AddrPort]*recvPath{})
	return t
}

// attach binds the tap to the socket it reads from, once.
func (t *ReadTap) attach(uc *net.UDPConn) error {
	v6, err := rawudp.IsV6(uc)
	if err != nil {
		return err
	}
	if t.attached.Load() {
		return errTapTaken
	}
	t.v4 = !v6
	t.attached.Store(true)
	return nil
}

// usable reports whether the tap is in front of a socket's reads.
func (t *ReadTap) usable() bool { return t != nil && t.attached.Load() }

// tapPacket is one datagram on its way from the socket's reader to a sink.
type tapPacket struct {
	n  int
	at int64 // arrival, unix nanos
	b  [maxPacket]byte
}

// take queues b to the sink it belongs to and reports whether it did; a
// datagram it does not take is pion's. Called by the socket's one reader.
func (t *ReadTap) take(b []byte, from netip.AddrPort) bool {
	// RFC 7983: RTP and RTCP start with 128-191; RTCP's packet types
	// (192-223) sit where RTP's marker and payload type are.
	if len(b) < 8 || len(b) > maxPacket || b[0] < 128 || b[0] > 191 {
		return false
	}
	rp := (*t.addrs.Load())[from]
	if rp == nil {
		return false
	}
	if b[1] >= 192 && b[1] <= 223 {
		s := rp.ctl.Load()
		return s != nil && t.queue(s.q, b, &rp.c.rtcpTaken, rp.c)
	}
	if len(b) < 12 {
		return false
	}
	s := (*rp.sinks.Load())[binary.BigEndian.Uint32(b[8:12])]
	return s != nil && t.queue(s.q, b, &rp.c.readTaken, rp.c)
}

// queue copies b into a pooled packet on q, and counts it in taken; a full
// queue leaves b to pion, whose readers keep running beside the sinks.
func (t *ReadTap) queue(q chan<- *tapPacket, b []byte, taken *atomic.Uint64, c *counters) bool {
	pk := t.pool.Get().(*tapPacket)
	pk.n = copy(pk.b[:], b)
	pk.at = time.Now().UnixNano()
	select {
	case q <- pk:
		taken.Add(1) // this goroutine's alone: no contention
		return true
	default: // the reader is behind: pion's path still reads this
		t.pool.Put(pk)
		c.readOverflow.Add(1)
		return false
	}
}

// setAddr maps a onto rp (and nothing else onto rp), unless another
// connection holds a: one remote address never reaches two connections'
// keys. It reports whether rp holds a now.
func (t *ReadTap) setAddr(rp *recvPath, old, a netip.AddrPort, add bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := *t.addrs.Load()
	if old.IsValid() && cur[old] == rp {
		n := make(map[netip.AddrPort]*recvPath, len(cur))
		for k, v := range cur {
			if k != old {
				n[k] = v
			}
		}
		cur = n
		t.addrs.Store(&n)
	}
	if !add {
		return false
	}
	if other := cur[a]; other != nil {
		return other == rp
	}
	n := make(map[netip.AddrPort]*recvPath, len(cur)+1)
	for k, v := range cur {
		n[k] = v
	}
	n[a] = rp
	t.addrs.Store(&n)
	return true
}

// recvPath is a publish connection's registration with the tap.
type recvPath struct {
	tap  *ReadTap
	keys *keyCatcher
	dtls *webrtc.DTLSTransport
	c    *counters

	mu     sync.Mutex     // guards addr and closed; serialises writers of sinks and ctl
	addr   netip.AddrPort // held in the tap; invalid: none
	closed bool
	sinks  atomic.Pointer[map[uint32]*tapSink] // by SSRC, copied on write
	ctl    atomic.Pointer[ctlSink]             // the connection's SRTCP (srtcpread.go); nil: pion's
}

func newRecvPath(t *ReadTap, keys *keyCatcher, c *counters) *recvPath {
	rp := &recvPath{tap: t, keys: keys, c: c}
	rp.sinks.Store(&map[uint32]*tapSink{})
	return rp
}

// setPair follows the connection's selected candidate pair (pion's
// OnSelectedCandidatePairChange). While it moves, packets from the new
// address reach pion, whose reader feeds the same layer.
func (rp *recvPath) setPair(pair *webrtc.ICECandidatePair) {
	a, ok := udpPairAddr(pair, rp.tap.v4)
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.closed || (ok && a == rp.addr) {
		return
	}
	old := rp.addr
	rp.addr = netip.AddrPort{}
	if rp.tap.setAddr(rp, old, a, ok) {
		rp.addr = a
	}
}

// close removes the connection from the tap; called before the
// connection closes, so no packet is decrypted with its keys after.
func (rp *recvPath) close() {
	if rp == nil {
		return
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.closed = true
	rp.tap.setAddr(rp, rp.addr, netip.AddrPort{}, false)
	rp.addr = netip.AddrPort{}
	rp.sinks.Store(&map[uint32]*tapSink{})
	if s := rp.ctl.Swap(nil); s != nil {
		close(s.stop)
	}
}

// newSink registers ssrc with the tap, once pion has announced it (its
// layer is attached), and counts which path reads it. Nil: pion's, for
// good (no tap, no receive keys because the server is the DTLS client or
// the profile is unknown, ICE-TCP).
func (rp *recvPath) newSink(ssrc uint32, c *counters) *tapSink {
	s := rp.sink(ssrc)
	if s == nil {
		c.pionReaders.Add(1)
		return nil
	}
	c.ownReaders.Add(1)
	return s
}

func (rp *recvPath) sink(ssrc uint32) *tapSink {
	keys := rp.readyKeys()
	if keys == nil {
		return nil
	}
	ctx, err := newRecvContext(keys)
	if err != nil {
		return nil
	}
	s := &tapSink{path: rp, ssrc: ssrc, ctx: ctx, q: make(chan *tapPacket, tapQueue)}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.closed || !rp.addr.IsValid() {
		return nil
	}
	old := *rp.sinks.Load()
	n := make(map[uint32]*tapSink, len(old)+1)
	for k, v := range old {
		n[k] = v
	}
	n[ssrc] = s
	rp.sinks.Store(&n)
	return s
}

// readyKeys are the connection's receive keys once its DTLS is up, with
// the selected pair registered; nil: the tap cannot serve it (yet).
func (rp *recvPath) readyKeys() *srtpKeys {
	if rp == nil || rp.dtls == nil || rp.dtls.State() != webrtc.DTLSTransportStateConnected {
		return nil
	}
	keys, err := rp.keys.srtpKeys()
	if err != nil {
		return nil
	}
	if pair, err := rp.dtls.ICETransport().GetSelectedCandidatePair(); err == nil {
		rp.setPair(pair) // the callback may not have run yet
	}
	return keys
}

// newRecvContext is an SRTP context that decrypts what the peer sends.
// Replay protection over libwebrtc's window of 1,024 packets rather than
// pion's 64: retransmissions come on the media SSRC (no RTX), and one
// asked for after a keyframe burst of a high layer is already more than
// 64 packets behind the newest; it is still new to the window. Cryptex (RFC 9335,
// encrypted header extensions) is accepted, not required: pion negotiates
// it when both sides offer it, and its choice is not exported; a packet
// is authenticated by the peer's keys either way.
func newRecvContext(keys *srtpKeys) (*srtp.Context, error) {
	return srtp.CreateContext(keys.remoteKey, keys.remoteSalt, keys.profile,
		srtp.SRTPReplayProtection(recvReplayWindow), srtp.Cryptex(srtp.CryptexModeEnabled))
}

// tapSink is one SSRC's queue from the tap to its layer.
type tapSink struct {
	path *recvPath
	ssrc uint32
	q    chan *tapPacket
	ctx  *srtp.Context // used by the sink's reader only
	hdr  rtp.Header    // scratch for DecryptRTP's parse
}

// remove unregisters the sink: the tap sends its SSRC to pion again.
func (s *tapSink) remove() {
	rp := s.path
	rp.mu.Lock()
	defer rp.mu.Unlock()
	old := *rp.sinks.Load()
	if old[s.ssrc] != s {
		return
	}
	n := make(map[uint32]*tapSink, len(old))
	for k, v := range old {
		if k != s.ssrc {
			n[k] = v
		}
	}
	rp.sinks.Store(&n)
}

// run decrypts the sink's packets and hands them to handle until stop is
// closed. A packet that fails authentication is dropped and counted, never
// forwarded; so is a replay, counted apart: a publisher's retransmission of
// a packet that came after all (late, or asked for twice) is one, and a
// browser sends those in normal operation. Only authentication failures
// count towards handing the SSRC back to pion.
func (s *tapSink) run(stop <-chan struct{}, handle func(p *rtp.Packet, raw []byte, now int64)) {
	var p rtp.Packet
	fails := 0
	for {
		var pk *tapPacket
		select {
		case <-stop:
			return
		case pk = <-s.q:
		}
		out, err := s.ctx.DecryptRTP(pk.b[:0], pk.b[:pk.n], &s.hdr)
		ok, giveUp := s.path.judge(err, &fails)
		if giveUp {
			s.remove()
		}
		if ok && p.Unmarshal(out) == nil {
			handle(&p, out, pk.at)
		}
		s.path.tap.pool.Put(pk)
	}
}

// judge counts a sink's decryption outcome: an authentication failure is
// rejected (giveUp once maxTapFailures come in a row: the sink hands its
// traffic back to pion), any other error is a replay or a packet too short;
// ok only for an authentic packet, which ends a run of failures.
func (rp *recvPath) judge(err error, fails *int) (ok, giveUp bool) {
	switch {
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
		rp.c.readRejected.Add(1)
		*fails++
		return false, *fails == maxTapFailures
	case err != nil:
		rp.c.readReplayed.Add(1)
		return false, false
	}
	*fails = 0
	return true, false
}
