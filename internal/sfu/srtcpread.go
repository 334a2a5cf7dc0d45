package sfu

import (
	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
)

// The connections' own SRTCP read path, beside the SRTP one (srtpread.go).
// Through pion, every inbound RTCP packet took the same receive chain as
// RTP, and then pion handed each packet of a compound to the reader of
// every SSRC it names: one goroutine per subscribed track (readRTCP) and
// one per published layer (readSenderReports). With a ReadTap, the SRTCP
// from a registered connection's selected address is queued to one
// goroutine per connection (ctlSink.run), which decrypts it with a
// context of its own, parses the compound once and hands it to the
// connection's handler: a subscriber's feedback (subRTCP: NACK, PLI/FIR,
// REMB once for the subscriber, receiver reports) or a publisher's sender
// reports. Why a queue and a goroutine, not the socket's reader: the
// handler takes downTracks' locks and resends (a NACK of 50 packets is
// 50 writes), and the socket's one reader serves every connection of the
// process; a full queue leaves the packet to pion, never waits.
//
// pion's per-track RTCP readers keep running beside the tap, parked:
// they see what the tap does not take (a full queue, a pair being
// changed, a connection whose keys are not ours), so correctness never
// depends on the tap, and a parked goroutine costs no CPU.

// ctlQueue is how many SRTCP packets a connection's queue holds: a
// browser sends a few a second per track, more in a loss burst.
const ctlQueue = 64

// ctlSink is one connection's SRTCP queue from the tap to its handler.
type ctlSink struct {
	path *recvPath
	q    chan *tapPacket
	stop chan struct{} // closed by recvPath.close
	ctx  *srtp.Context // used by run only
	hdr  rtcp.Header   // scratch for DecryptRTCP's parse
}

// newRecvRTCPContext is an SRTCP context that decrypts what the peer
// sends, with the replay window of the SRTP one.
func newRecvRTCPContext(keys *srtpKeys) (*srtp.Context, error) {
	return srtp.CreateContext(keys.remoteKey, keys.remoteSalt, keys.profile,
		srtp.SRTCPReplayProtection(recvReplayWindow))
}

// serveRTCP registers the connection's SRTCP with the tap, once its DTLS
// is up and its keys are known. It returns the sink for the caller to
// run (in a goroutine it owns), or nil: the tap serves it already, or
// cannot (no keys, no pair the socket carries), and pion reads.
func (rp *recvPath) serveRTCP() *ctlSink {
	keys := rp.readyKeys()
	if keys == nil {
		return nil
	}
	ctx, err := newRecvRTCPContext(keys)
	if err != nil {
		return nil
	}
	s := &ctlSink{path: rp, q: make(chan *tapPacket, ctlQueue), stop: make(chan struct{}), ctx: ctx}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.closed || !rp.addr.IsValid() || rp.ctl.Load() != nil {
		return nil
	}
	rp.ctl.Store(s)
	return s
}

// remove hands the connection's SRTCP back to pion.
func (s *ctlSink) remove() {
	rp := s.path
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.ctl.CompareAndSwap(s, nil) {
		close(s.stop)
	}
}

// run decrypts the queued packets and hands each compound, parsed, to
// handle (with its arrival, unix nanos) until the sink is removed or the
// connection leaves the tap. Authentication failures and replays are
// dropped and counted as for SRTP; maxTapFailures failures in a row hand
// the connection's SRTCP back to pion.
func (s *ctlSink) run(handle func(pkts []rtcp.Packet, now int64)) {
	fails := 0
	for {
		var pk *tapPacket
		select {
		case <-s.stop:
			return
		case pk = <-s.q:
		}
		out, err := s.ctx.DecryptRTCP(pk.b[:0], pk.b[:pk.n], &s.hdr)
		ok, giveUp := s.path.judge(err, &fails)
		if giveUp {
			s.remove()
		}
		if ok {
			if pkts, err := rtcp.Unmarshal(out); err == nil {
				handle(pkts, pk.at)
			}
		}
		s.path.tap.pool.Put(pk)
	}
}
