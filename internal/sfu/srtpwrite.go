package sfu

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/rehabrtc/rehabrtc/internal/rawudp"
)

// The subscribe side's own RTP write path. pion's write chain (RTPSender,
// the SRTP session's lock and context lookup, mux.Endpoint, ice.Conn's
// task-loop check and pair lookup, the UDP mux's conn) was two thirds of
// the server's CPU per forwarded packet; our own code a few percent. Once
// a subscribe connection's DTLS handshake is done and its keys are known
// (srtpkeys.go), each downTrack encrypts with an SRTP context of its own
// and writes straight to the SFU's UDP socket, at the remote address of
// the connection's selected candidate pair. RTCP (sender reports, and the
// SRTCP pion answers with) stays on pion's path: SRTCP has its own index,
// independent of SRTP's, so the two writers never share a counter. One
// SSRC never mixes the two writers: the choice is made once, before its
// first packet.

var (
	errPathLost     = errors.New("sfu: the selected candidate pair cannot be written directly")
	errPacketTooBig = errors.New("sfu: RTP packet too big")
)

// directPath is what a subscribe connection's downTracks need to write
// their RTP themselves. Nil (no UDP socket configured) means pion's path.
type directPath struct {
	conn   *net.UDPConn
	v4     bool // the socket's family; only such remote addresses fit
	keys   *keyCatcher
	dtls   *webrtc.DTLSTransport
	remote atomic.Pointer[netip.AddrPort] // nil: the selected pair cannot be written directly
	used   atomic.Bool                    // a downTrack writes through it
	lost   atomic.Pointer[func()]         // called once a used path's pair moves where it cannot follow
}

func newDirectPath(conn *net.UDPConn, keys *keyCatcher) *directPath {
	if conn == nil {
		return nil
	}
	v6, err := rawudp.IsV6(conn)
	if err != nil {
		return nil
	}
	return &directPath{conn: conn, v4: !v6, keys: keys}
}

// pairAddr is the remote address to write to for pair, if the pair is one
// this socket carries: a host UDP candidate of ours (the mux socket; the
// server gathers nothing else over UDP) and a UDP remote of the socket's
// family with a literal address.
func (dp *directPath) pairAddr(pair *webrtc.ICECandidatePair) (netip.AddrPort, bool) {
	if pair == nil || pair.Local == nil || pair.Remote == nil ||
		pair.Local.Protocol != webrtc.ICEProtocolUDP || pair.Local.Typ != webrtc.ICECandidateTypeHost ||
		pair.Remote.Protocol != webrtc.ICEProtocolUDP || pair.Remote.Port == 0 {
		return netip.AddrPort{}, false
	}
	a, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil || a.Zone() != "" {
		return netip.AddrPort{}, false
	}
	a = a.Unmap()
	if a.Is4() != dp.v4 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, pair.Remote.Port), true
}

// setPair follows the connection's selected candidate pair (pion's
// OnSelectedCandidatePairChange).
func (dp *directPath) setPair(pair *webrtc.ICECandidatePair) {
	if a, ok := dp.pairAddr(pair); ok {
		dp.remote.Store(&a)
		return
	}
	if dp.remote.Swap(nil) != nil && dp.used.Load() {
		if f := dp.lost.Load(); f != nil {
			(*f)()
		}
	}
}

// writerDecision is what a downTrack does with its SSRC's RTP.
type writerDecision int

const (
	writeLater writerDecision = iota // DTLS not up yet: drop the packet (pion would too), decide later
	writePion                        // pion's write path, for good
	writeOwn                         // our SRTP writer, for good
)

// newWriter decides, before an SSRC's first packet, which path carries it.
func (dp *directPath) newWriter() (*ownWriter, writerDecision) {
	if dp == nil {
		return nil, writePion
	}
	if dp.dtls == nil || dp.dtls.State() != webrtc.DTLSTransportStateConnected {
		return nil, writeLater
	}
	keys, err := dp.keys.srtpKeys()
	if err != nil { // the server is the DTLS client, or an unknown suite or profile
		return nil, writePion
	}
	if dp.remote.Load() == nil {
		if pair, err := dp.dtls.ICETransport().GetSelectedCandidatePair(); err == nil {
			dp.setPair(pair)
		}
		if dp.remote.Load() == nil { // ICE-TCP, or an address this socket cannot reach
			return nil, writePion
		}
	}
	ctx, err := srtp.CreateContext(keys.key, keys.salt, keys.profile)
	if err != nil {
		return nil, writePion
	}
	out, err := rawudp.NewSender(dp.conn, !dp.v4)
	if err != nil {
		return nil, writePion
	}
	dp.used.Store(true)
	return &ownWriter{path: dp, ctx: ctx, out: out}, writeOwn
}

// ownWriter encrypts and sends one SSRC's RTP; used under its downTrack's
// lock, so its buffers are reused without allocation.
type ownWriter struct {
	path  *directPath
	ctx   *srtp.Context
	out   *rawudp.Sender
	hdr   rtp.Header // scratch for EncryptRTP's parse
	plain [maxPacket + 64]byte
	enc   [maxPacket + 128]byte
}

// write sends one RTP packet; it returns the bytes put on the wire.
func (w *ownWriter) write(h *rtp.Header, payload []byte) (int, error) {
	n, err := h.MarshalTo(w.plain[:])
	if err != nil {
		return 0, err
	}
	if n+len(payload) > len(w.plain) {
		return 0, errPacketTooBig
	}
	n += copy(w.plain[n:], payload)
	out, err := w.ctx.EncryptRTP(w.enc[:0], w.plain[:n], &w.hdr)
	if err != nil {
		return 0, err
	}
	to := w.path.remote.Load()
	if to == nil {
		return 0, errPathLost
	}
	n, err = w.out.Send(out, *to)
	if errors.Is(err, rawudp.ErrUnsupportedAddr) {
		return 0, errPathLost
	}
	return n, err
}
