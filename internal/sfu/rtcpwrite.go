package sfu

import (
	"errors"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"

	"github.com/rehabrtc/rehabrtc/internal/rawudp"
)

// The router's own RTCP writes (feedback, REMB and PLI to publishers,
// sender reports to subscribers), through the connection's direct path
// when it has one, as its RTP (srtpwrite.go). pion's WriteRTCP runs the
// interceptor chain, the SRTCP session's lock and stream lookup, the ICE
// conn and the mux for each; about 5 % of the server at 10 x 4.
//
// The receiver keeps an SRTCP replay window per sender SSRC (the first
// header's), and pion's SRTCP context and ours would each count their own
// index from 1: packets from the second writer of one SSRC would be
// dropped as replays. So one connection's router RTCP goes one way for
// good, decided once, at the first write after its DTLS is up; before,
// writes fail as pion's would. pion itself writes no RTCP on these
// connections (their interceptors only read RTCP).

var errRTCPNotReady = errors.New("sfu: connection not ready for RTCP")

// rtcpWriter is one peer connection's way out for the router's RTCP. Its
// write is safe for concurrent use: the feedback loop, the allocator and
// keyframe requests share it.
type rtcpWriter struct {
	pion func([]rtcp.Packet) error // the connection's WriteRTCP
	path *directPath               // nil: pion's, for good
	c    *counters
	// links sees what our path sends, as its interceptor sees what pion's
	// chain writes (the NACKs and receiver reports of the sfu-stats).
	links *linkReports

	mu  sync.Mutex // guards the fields below; one write at a time
	how writerDecision
	ctx *srtp.Context // SRTCP index state per sender SSRC; not safe for concurrent use
	out *rawudp.Sender
	enc []byte // the compound packet, encrypted; reused
	hdr rtcp.Header
}

func newRTCPWriter(pion func([]rtcp.Packet) error, path *directPath, c *counters, links *linkReports) *rtcpWriter {
	return &rtcpWriter{pion: pion, path: path, c: c, links: links}
}

// write sends pkts as one compound packet.
func (w *rtcpWriter) write(pkts []rtcp.Packet) error {
	w.mu.Lock()
	if w.how == writeLater {
		w.decide()
	}
	switch w.how {
	case writePion:
		w.mu.Unlock()
		return w.pion(pkts)
	case writeLater:
		w.mu.Unlock()
		return errRTCPNotReady
	}
	defer w.mu.Unlock()
	if w.links != nil {
		w.links.take(pkts, false)
	}
	return w.send(pkts)
}

// decide picks the connection's path once its DTLS is up; called with
// w.mu held.
func (w *rtcpWriter) decide() {
	keys, how := w.path.choose()
	if how == writeOwn {
		ctx, err := srtp.CreateContext(keys.key, keys.salt, keys.profile)
		out, serr := rawudp.NewSender(w.path.conn, !w.path.v4)
		if err != nil || serr != nil {
			how = writePion
		} else {
			w.ctx, w.out = ctx, out
			w.path.used.Store(true)
		}
	}
	w.how = how
	switch how {
	case writeOwn:
		w.c.ownRTCP.Add(1)
	case writePion:
		w.c.pionRTCP.Add(1)
	}
}

// send marshals, encrypts and sends pkts on the direct path; called with
// w.mu held. rtcp.Marshal allocates a few buffers per write: at the few
// RTCP packets a connection sends a second, not worth an encoder of our own.
func (w *rtcpWriter) send(pkts []rtcp.Packet) error {
	plain, err := rtcp.Marshal(pkts)
	if err != nil {
		return err
	}
	w.enc, err = w.ctx.EncryptRTCP(w.enc[:0], plain, &w.hdr)
	if err != nil {
		return err
	}
	to := w.path.remote.Load()
	if to == nil {
		return errPathLost
	}
	_, err = w.out.Send(w.enc, *to)
	if errors.Is(err, rawudp.ErrUnsupportedAddr) {
		return errPathLost
	}
	return err
}
