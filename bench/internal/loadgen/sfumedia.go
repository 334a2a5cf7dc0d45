package loadgen

// The synthetic media of the SFU workload (W8): VP8 and Opus RTP made by
// the tool itself, at a browser's rates, each packet stamped with its send
// time so that a subscriber in this process can measure the added latency.

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// Media shape (docs/performance.md, "The SFU under the load generator"):
// the workload of issue 11, on which Galène was measured.
const (
	vp8PacketBytes = 1100 // RTP payload of a full video packet
	vp8KeyPackets  = 24   // a keyframe is 24 full packets…
	vp8KeyEvery    = 60   // …every 2 s at 30 fps
	vp8DeltaBytes  = 4 * vp8PacketBytes
	opusBytes      = 100 // 20 ms at 40 kbit/s
	stampBytes     = 14  // at the end of each payload: the publisher's SSRC, sequence number, send time
)

// vp8Gen makes the packets of one VP8 camera: frames of 4 full packets,
// a keyframe of 24 every 60 frames or when the server asks for one (PLI).
// The payload is a real VP8 payload descriptor (picture id) and, on a
// keyframe, a real VP8 keyframe header with the frame size, which is what
// the router reads; the rest is filler. Only its pump goroutine calls
// frame; keyAsked is set by the RTCP reader.
type vp8Gen struct {
	width, height uint16
	// The layer's shape; zero values are the full camera's (4 packets a
	// frame, 24 a keyframe, 1,100 bytes each).
	deltaPackets, keyPackets, packetBytes int
	seq                                   uint16
	ts                                    uint32
	pid                                   uint16
	frames                                int
	keyAsked                              atomic.Bool
	buf                                   [vp8KeyPackets][vp8PacketBytes]byte // reused payloads
	out                                   [][]byte
}

// frame returns the payloads of the next frame (valid until the next
// call), whether it is a keyframe, and its RTP timestamp; seq is the first
// packet's sequence number.
func (g *vp8Gen) frame() (payloads [][]byte, key bool, seq uint16, ts uint32) {
	key = g.frames%vp8KeyEvery == 0 || g.keyAsked.Swap(false)
	n := cmpOr(g.deltaPackets, vp8DeltaBytes/vp8PacketBytes)
	if key {
		n = cmpOr(g.keyPackets, vp8KeyPackets)
	}
	n = min(n, vp8KeyPackets)
	size := min(cmpOr(g.packetBytes, vp8PacketBytes), vp8PacketBytes)
	payloads = g.out[:0]
	for i := range n {
		p := g.buf[i][:size]
		// Payload descriptor: X, S on the first packet; I with a 15-bit
		// picture id.
		p[0], p[1], p[2], p[3] = 0x80, 0x80, byte(0x80|g.pid>>8), byte(g.pid)
		if i == 0 {
			p[0] |= 0x10
			if key {
				p[4] = 0x10 // P=0: keyframe, show_frame
				p[5], p[6] = 0, 0
				p[7], p[8], p[9] = 0x9d, 0x01, 0x2a
				binary.LittleEndian.PutUint16(p[10:], g.width)
				binary.LittleEndian.PutUint16(p[12:], g.height)
			} else {
				p[4] = 0x11 // P=1: interframe
			}
		}
		payloads = append(payloads, p)
	}
	g.out = payloads
	seq, ts = g.seq, g.ts
	g.seq += uint16(n)
	g.ts += 3000 // 90 kHz at 30 fps
	g.pid = (g.pid + 1) & 0x7fff
	g.frames++
	return payloads, key, seq, ts
}

// simulcastLayers are the three layers a page publishes in SFU mode (rids
// q, h, f, low to high, as sfutransport.js names them): f is the full
// camera; h a quarter of its pixels at about 270 kbit/s; q a sixteenth at
// about 100 kbit/s.
var simulcastLayers = []struct {
	rid                                   string
	width, height                         uint16
	deltaPackets, keyPackets, packetBytes int
}{
	{"q", 320, 180, 1, 2, 400},
	{"h", 640, 360, 1, 6, 1100},
	{"f", 1280, 720, 0, 0, 0},
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// sendStamp is what a payload carries of its sending: the publisher's
// SSRC and sequence number (to find the packet's sendto time, filed by
// the publisher's socket) and the send time taken before WriteRTP.
type sendStamp struct {
	ssrc uint32
	seq  uint16
	t    int64 // ns on the run's clock
}

// putStamp writes st at the end of payload.
func putStamp(payload []byte, st sendStamp) {
	b := payload[len(payload)-stampBytes:]
	binary.BigEndian.PutUint32(b, st.ssrc)
	binary.BigEndian.PutUint16(b[4:], st.seq)
	binary.BigEndian.PutUint64(b[6:], uint64(st.t))
}

// rtpStamp reads the send stamp at the end of a received RTP packet's
// payload, parsing only what it must of the header (CSRCs, extension,
// padding). ok is false for a packet too short to carry one.
func rtpStamp(pkt []byte) (st sendStamp, ok bool) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return st, false
	}
	off := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 { // extension
		if len(pkt) < off+4 {
			return st, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:]))
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 && end > 0 { // padding
		end -= int(pkt[end-1])
	}
	if end-off < stampBytes {
		return st, false
	}
	b := pkt[end-stampBytes : end]
	return sendStamp{binary.BigEndian.Uint32(b), binary.BigEndian.Uint16(b[4:]), int64(binary.BigEndian.Uint64(b[6:]))}, true
}

// udpSock is one line of /proc/net/udp: the socket's local port and the
// datagrams the kernel dropped on it (its receive buffer was full).
type udpSock struct {
	port  int
	drops int64
}

// udpSockets reads /proc/net/udp, by socket inode.
func udpSockets() map[uint64]udpSock {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return nil
	}
	out := map[uint64]udpSock{}
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 13 {
			continue
		}
		_, portHex, ok := strings.Cut(f[1], ":")
		port, err1 := strconv.ParseInt(portHex, 16, 32)
		inode, err2 := strconv.ParseUint(f[9], 10, 64)
		drops, err3 := strconv.ParseInt(f[len(f)-1], 10, 64)
		if !ok || err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out[inode] = udpSock{port: int(port), drops: drops}
	}
	return out
}

// udpDrops sums the drops between two readings of the sockets present in
// both: on the socket bound to port (the server's ICE mux), and on every
// other (the load tool's clients, and whatever else the machine runs).
func udpDrops(before, after map[uint64]udpSock, port int) (onPort, others int64) {
	for inode, a := range after {
		b, ok := before[inode]
		if !ok {
			continue
		}
		if a.port == port {
			onPort += a.drops - b.drops
		} else {
			others += a.drops - b.drops
		}
	}
	return onPort, others
}
