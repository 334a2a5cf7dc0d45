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
// the connection's selected candidate pair. The router's RTCP takes the
// same path (rtcpwrite.go), with an SRTCP context of its own. One
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
// this socket carries (udpPairAddr).
func (dp *directPath) pairAddr(pair *webrtc.ICECandidatePair) (netip.AddrPort, bool) {
	return udpPairAddr(pair, dp.v4)
}

// udpPairAddr is the remote address of pair if the SFU's UDP socket (of
// family v4 or not) carries it: a host UDP candidate of ours (the mux
// socket; the server gathers nothing else over UDP) and a UDP remote of
// the socket's family with a literal address.
func udpPairAddr(pair *webrtc.ICECandidatePair, v4 bool) (netip.AddrPort, bool) {
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
	if a.Is4() != v4 {
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

// choose decides which path an SSRC's RTP, or a connection's RTCP,
// takes: writeOwn with the keys to encrypt with, or writeLater, or
// writePion for good.
func (dp *directPath) choose() (*srtpKeys, writerDecision) {
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
	return keys, writeOwn
}

// newWriter decides, before an SSRC's first packet, which path carries it.
func (dp *directPath) newWriter() (*ownWriter, writerDecision) {
	keys, how := dp.choose()
	if how != writeOwn {
		return nil, how
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

// sendBuf is the scratch of one packet's way out: the header being
// written, the packet (encrypted in place) and EncryptRTP's parse of it.
// Each fan-out goroutine has one, used for every subscriber in turn; a
// buffer per subscriber (3 KB each) made a fan-out to 100 walk 300 KB.
type sendBuf struct {
	hdr    rtp.Header // the outgoing header (downTrack.write)
	parsed rtp.Header // EncryptRTP's parse of it
	// b holds the header and payload, then the same encrypted, with room
	// for the auth tag (16 bytes with AES-GCM, 10 with AES-CM) and an MKI.
	b [maxPacket + 128]byte
}

// ownWriter encrypts and sends one SSRC's RTP; used under its downTrack's
// lock.
type ownWriter struct {
	path *directPath
	ctx  *srtp.Context
	out  *rawudp.Sender
}

// maxPlain leaves the encryption's overhead free at the end of a sendBuf.
const maxPlain = maxPacket + 64

// write sends one RTP packet, encrypted in buf; it returns the bytes put
// on the wire.
func (w *ownWriter) write(h *rtp.Header, payload []byte, buf *sendBuf) (int, error) {
	n, err := h.MarshalTo(buf.b[:maxPlain])
	if err != nil {
		return 0, err
	}
	if n+len(payload) > maxPlain {
		return 0, errPacketTooBig
	}
	n += copy(buf.b[n:maxPlain], payload)
	// In place: pion encrypts over the plaintext when dst starts where it
	// does (its sameBuffer case; AES-GCM and AES-CM both allow it).
	out, err := w.ctx.EncryptRTP(buf.b[:0], buf.b[:n], &buf.parsed)
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
