package e2e

import (
	"context"
	bin "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// The loss test runs the real binary in a "svc" network namespace wired to two others, "pub" and
// "sub", and drops 5 % of the packets on one link with netem. The clients are pion peers, not
// browsers: a browser would need its own process per namespace (Chromium's network service cannot
// be moved into one, and the shared test browser lives in the host's), while what is tested here is
// the server's side of recovery (its NACK cache toward a subscriber, its NACKs toward a publisher).
// The pion peers behave like a browser where it matters: VP8 with NACK and PLI feedback, receiver
// and sender reports, pion's NACK generator and responder.
//
//	pub 10.79.1.2 ── 10.79.1.1 ┐
//	                           svc (rehabrtc on 10.79.0.1)
//	sub 10.79.2.2 ── 10.79.2.1 ┘

const lossHost = "10.79.0.1"

// lossTopology is the three namespaces and the svc side of each link.
type lossTopology struct {
	*netns
	svc, pub, sub    string
	pubLink, subLink string // the svc ends of the veths, where netem drops what goes out
	pubAddr, subAddr string
}

func newLossTopology(t *testing.T) *lossTopology {
	t.Helper()
	n := newNetns(t, "sfurob", "ip", "tc")
	top := &lossTopology{netns: n, svc: n.add("svc"), pub: n.add("pub"), sub: n.add("sub"),
		pubLink: n.id + "p", subLink: n.id + "s", pubAddr: "10.79.1.2", subAddr: "10.79.2.2"}
	n.star(top.svc, lossHost, 79, spoke{top.pub, top.pubLink, top.pubLink + "x"}, spoke{top.sub, top.subLink, top.subLink + "x"})
	return top
}

// drop makes pct % of the packets on one link vanish, and returns what undoes it: toSub, what
// the server sends the subscriber; else what the publisher sends the server. tc netem on the sending end of the link where the kernel has it; where it has no
// sch_netem (containers often lack it), an nftables rule in svc dropping the same share at
// random (numgen random), which is the same independent loss.
func (n *lossTopology) drop(t *testing.T, toSub bool, pct int) (undo func()) {
	t.Helper()
	dev, devNS := n.subLink, n.svc // svc's end sends to the subscriber
	if !toSub {
		dev, devNS = n.pubLink+"x", n.pub // the publisher's end sends to svc
	}
	out, err := exec.Command("ip", "netns", "exec", devNS, "tc", "qdisc", "add", "dev", dev, "root", "netem",
		"loss", fmt.Sprintf("%d%%", pct)).CombinedOutput()
	if err == nil {
		t.Logf("tc netem: %d %% loss on %s in %s", pct, dev, devNS)
		return func() { exec.Command("ip", "netns", "exec", devNS, "tc", "qdisc", "del", "dev", dev, "root").Run() }
	}
	if !strings.Contains(string(out), "unknown") {
		t.Fatalf("tc netem: %v: %s", err, out)
	}
	rule := fmt.Sprintf("chain c { type filter hook output priority 0; oifname %q numgen random mod 100 < %d drop; };", n.subLink, pct)
	if !toSub {
		rule = fmt.Sprintf("chain c { type filter hook input priority 0; iifname %q numgen random mod 100 < %d drop; };", n.pubLink, pct)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		testutil.Missing(t, "no tc netem in this kernel, and no nft: "+err.Error())
	}
	n.nft(n.svc, "table inet sfurobloss { "+rule+" }\n")
	t.Logf("no tc netem in this kernel: nftables drops %d %% at random (to the subscriber: %v)", pct, toSub)
	return func() {
		exec.Command("ip", "netns", "exec", n.svc, "nft", "delete", "table", "inet", "sfurobloss").Run()
	}
}

// startService runs rehabrtc serve in svc: plain HTTP, media forced through the SFU on
// lossHost's UDP port 7900.
func (n *lossTopology) startService(t *testing.T) *nsServer {
	t.Helper()
	hc, _, _ := n.serve("rehabrtc", n.svc, syscall.SIGTERM,
		map[string]any{"hostname": lossHost, "external_port": 8080, "local_base_port": 8100, "max_sessions": 5},
		map[string]any{
			"url_scheme": "http", "media_mode": "sfu",
			"gateway": map[string]any{"enabled": true, "listen": ":8080"},
			"turn":    map[string]any{"enabled": false},
			"sfu":     map[string]any{"bind": lossHost, "udp_port": 7900, "tcp_port": 7900},
		})
	return &nsServer{api: nsAPI, gateway: "http://" + lossHost + ":8080", hc: hc}
}

// metric reads one counter of the service's /metrics.
func (s *nsServer) metric(t *testing.T, name string) float64 {
	t.Helper()
	res, err := s.hc.Get(s.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// sfuPeer is a pion client of the session in its namespace: its WebSocket to the hub and one
// peer connection to the server (publish or subscribe).
type sfuPeer struct {
	t    *testing.T
	name string
	ws   *websocket.Conn
	api  *webrtc.API
	ctx  context.Context

	mu    sync.Mutex
	pc    *webrtc.PeerConnection
	stats []lossStats // sfu-stats received
	// frames: by frame number, when each packet of it arrived (subscriber)
	frames map[uint32]*frameArrival
	wg     sync.WaitGroup
}

type lossLink struct {
	Loss   float64 `json:"loss"`
	RTTms  int     `json:"rtt_ms"`
	Kbps   int     `json:"kbps"`
	NACKs  uint64  `json:"nacks"`
	Resent uint64  `json:"resent"`
}

type lossStats struct {
	Down *lossLink           `json:"down"`
	Up   map[string]lossLink `json:"up"`
}

type frameArrival struct {
	key      bool
	count    int // packets of the frame
	got      map[uint8]bool
	complete time.Time
}

// joinFrom joins the session as uuid from namespace ns (its pion peer bound to addr).
func joinFrom(t *testing.T, srv *nsServer, ns, addr string, sess Session, uuid, name string) *sfuPeer {
	t.Helper()
	u, err := url.Parse(sess.link(t, uuid))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	ws, _, err := websocket.Dial(dctx, fmt.Sprintf("ws://%s:8080/websocket/%d/", lossHost, sess.Port),
		&websocket.DialOptions{HTTPClient: httpClient(ns, nil)})
	if err != nil {
		t.Fatalf("%s: join: %v", name, err)
	}
	ws.SetReadLimit(1 << 20)
	p := &sfuPeer{t: t, name: name, ws: ws, ctx: ctx, api: lossAPI(t, ns, addr), frames: map[uint32]*frameArrival{}}
	t.Cleanup(func() {
		cancel()
		ws.CloseNow()
		p.mu.Lock()
		pc := p.pc
		p.mu.Unlock()
		if pc != nil {
			pc.Close()
		}
		p.wg.Wait()
	})
	p.send(map[string]any{"type": "join", "key": u.Query().Get("key"), "name": name})
	return p
}

// lossAPI is a browser-like pion API whose one UDP socket lives in namespace ns.
func lossAPI(t *testing.T, ns, addr string) *webrtc.API {
	t.Helper()
	var conn *net.UDPConn
	if err := inNetns(ns, func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(addr)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	mux := webrtc.NewICEUDPMux(nil, conn)
	t.Cleanup(func() { mux.Close(); conn.Close() })
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: webrtc.TypeRTCPFBGoogREMB}}
	must(t, m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb},
		PayloadType:        96}, webrtc.RTPCodecTypeVideo))
	ir := &interceptor.Registry{}
	must(t, webrtc.ConfigureNack(m, ir))
	must(t, webrtc.ConfigureRTCPReports(ir))
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ok reports err from a goroutine of the peer's (where Fatal is not allowed) and says whether
// there was none. Errors after the test's end (connections closing) are expected.
func (p *sfuPeer) ok(what string, err error) bool {
	if err != nil && p.ctx.Err() == nil {
		p.t.Errorf("%s: %s: %v", p.name, what, err)
	}
	return err == nil
}

func (p *sfuPeer) send(m any) {
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	if err := p.ws.Write(ctx, websocket.MessageText, b); err != nil && p.ctx.Err() == nil {
		p.t.Errorf("%s: send: %v", p.name, err)
	}
}

// run reads the hub's messages until the test ends; onMode is called on media-mode sfu.
func (p *sfuPeer) run(onMode func()) {
	p.wg.Go(func() {
		for {
			_, b, err := p.ws.Read(p.ctx)
			if err != nil {
				return
			}
			var m struct {
				Type string `json:"type"`
				Mode string `json:"mode"`
				PC   string `json:"pc"`
				SDP  string `json:"sdp"`
				Code string `json:"code"`
				lossStats
			}
			if err := json.Unmarshal(b, &m); err != nil {
				p.t.Errorf("%s: %s: %v", p.name, b, err)
				return
			}
			switch m.Type {
			case "media-mode":
				if m.Mode == "sfu" && onMode != nil {
					onMode()
				}
			case "sfu-answer":
				p.mu.Lock()
				pc := p.pc
				p.mu.Unlock()
				if pc != nil {
					p.ok("publish answer", pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}))
				}
			case "sfu-offer":
				p.answer(m.SDP)
			case "sfu-stats":
				p.mu.Lock()
				p.stats = append(p.stats, m.lossStats)
				p.mu.Unlock()
			case "sfu-error", "error":
				p.t.Errorf("%s: %s", p.name, b)
			}
		}
	})
}

// gathered makes pc's offer (or answer), sets it and returns it with its candidates.
func (p *sfuPeer) gathered(pc *webrtc.PeerConnection, offer bool) (string, bool) {
	var d webrtc.SessionDescription
	var err error
	if offer {
		d, err = pc.CreateOffer(nil)
	} else {
		d, err = pc.CreateAnswer(nil)
	}
	if !p.ok("create description", err) {
		return "", false
	}
	done := webrtc.GatheringCompletePromise(pc)
	if !p.ok("set local description", pc.SetLocalDescription(d)) {
		return "", false
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.ok("gather", errors.New("ICE gathering did not complete"))
	}
	return pc.LocalDescription().SDP, true
}

// publish sends a VP8 camera to the server at 30 fps until the test ends.
func (p *sfuPeer) publish() {
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{})
	if !p.ok("publish connection", err) {
		return
	}
	p.mu.Lock()
	p.pc = pc
	p.mu.Unlock()
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", p.name)
	if !p.ok("track", err) {
		return
	}
	tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if !p.ok("transceiver", err) {
		return
	}
	sdp, ok := p.gathered(pc, true)
	if !ok {
		return
	}
	p.send(map[string]any{"type": "sfu-offer", "pc": "pub", "sdp": sdp, "sources": map[string]string{tr.Mid(): "camera"}})
	src := &lossVP8{}
	p.wg.Go(func() { // PLI: a keyframe next
		for {
			pkts, _, err := tr.Sender().ReadRTCP()
			if err != nil {
				return
			}
			for _, k := range pkts {
				if _, ok := k.(*rtcp.PictureLossIndication); ok {
					src.keyAsked.Store(true)
				}
			}
		}
	})
	p.wg.Go(func() {
		tk := time.NewTicker(time.Second / 30)
		defer tk.Stop()
		for {
			select {
			case <-p.ctx.Done():
				return
			case <-tk.C:
			}
			for _, k := range src.next() {
				if err := track.WriteRTP(k); err != nil {
					return
				}
			}
		}
	})
}

// answer answers the server's subscribe offer and records the frames of what it receives.
func (p *sfuPeer) answer(offer string) {
	p.mu.Lock()
	pc := p.pc
	p.mu.Unlock()
	if pc == nil {
		var err error
		if pc, err = p.api.NewPeerConnection(webrtc.Configuration{}); !p.ok("subscribe connection", err) {
			return
		}
		pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			p.wg.Go(func() { p.receive(tr) })
		})
		p.mu.Lock()
		p.pc = pc
		p.mu.Unlock()
	}
	if !p.ok("subscribe offer", pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer})) {
		return
	}
	if sdp, ok := p.gathered(pc, false); ok {
		p.send(map[string]any{"type": "sfu-answer", "pc": "sub", "sdp": sdp})
	}
}

// receive notes when each packet of each frame arrives (retransmissions included: pion's NACK
// generator asks for what is missing).
func (p *sfuPeer) receive(tr *webrtc.TrackRemote) {
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		frame, idx, count, key, ok := lossMarker(pkt.Payload)
		if !ok {
			continue
		}
		now := time.Now()
		p.mu.Lock()
		f := p.frames[frame]
		if f == nil {
			f = &frameArrival{key: key, count: int(count), got: map[uint8]bool{}}
			p.frames[frame] = f
		}
		f.got[idx] = true
		if len(f.got) == f.count && f.complete.IsZero() {
			f.complete = now
		}
		p.mu.Unlock()
	}
}

// decodeGaps replays the frames numbered [from, to) through a decoder model: a frame decodes once
// it is complete and, unless it is a keyframe, the frame before it has decoded (frame from-1
// counts as decoded when it was complete). It returns the
// longest time without a newly decoded frame, and how many frames decoded.
func (p *sfuPeer) decodeGaps(from, to uint32) (longest time.Duration, decoded int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var times []time.Time
	var prev time.Time // when the frame before decoded; zero: it did not
	if f := p.frames[from-1]; f != nil {
		prev = f.complete // decoding before the window: the stream was flowing
	}
	for n := from; n < to; n++ {
		f := p.frames[n]
		var at time.Time
		if f != nil && !f.complete.IsZero() && (f.key || !prev.IsZero()) {
			at = f.complete
			if !f.key && prev.After(at) {
				at = prev
			}
		}
		prev = at
		if !at.IsZero() {
			times = append(times, at)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(times); i++ {
		longest = max(longest, times[i].Sub(times[i-1]))
	}
	return longest, len(times)
}

// lastFrame is the highest frame number received.
func (p *sfuPeer) lastFrame() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n uint32
	for k := range p.frames {
		n = max(n, k)
	}
	return n
}

func (p *sfuPeer) lastStats() (lossStats, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.stats) == 0 {
		return lossStats{}, false
	}
	return p.stats[len(p.stats)-1], true
}

// lossVP8 makes VP8 RTP the server can parse: frames of 3 packets at 30 fps, a keyframe every 2 s
// or when asked. After the VP8 descriptor and the 10-byte keyframe header, each payload says its
// frame number, packet index and packet count, so the subscriber can tell complete frames.
type lossVP8 struct {
	seq      uint16
	ts       uint32
	frame    uint32
	keyAsked atomic.Bool // set by the PLI reader
}

const lossFramePackets = 3

func (s *lossVP8) next() []*rtp.Packet {
	key := s.keyAsked.Swap(false) || s.frame%60 == 0
	var out []*rtp.Packet
	for i := range lossFramePackets {
		pid := uint16(s.frame & 0x7fff)
		desc := []byte{0x80, 0x80, byte(0x80 | pid>>8), byte(pid)} // X, I, 15-bit picture id
		body := make([]byte, 1000)
		if i == 0 {
			desc[0] |= 0x10 // S: start of the frame
			body[0] = 0x11  // inter frame
			if key {
				body[0] = 0x10
				copy(body[3:6], []byte{0x9d, 0x01, 0x2a})
				bin.LittleEndian.PutUint16(body[6:], 640)
				bin.LittleEndian.PutUint16(body[8:], 360)
			}
		}
		bin.BigEndian.PutUint32(body[10:], s.frame)
		body[14], body[15] = byte(i), lossFramePackets
		if key {
			body[16] = 1
		}
		out = append(out, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: s.seq,
			Timestamp: s.ts, Marker: i == lossFramePackets-1}, Payload: append(desc, body...)})
		s.seq++
	}
	s.frame++
	s.ts += 3000
	return out
}

// lossMarker reads what lossVP8 wrote after the VP8 payload descriptor (RFC 7741 4.2), which the
// server may rewrite (picture id), not the body.
func lossMarker(payload []byte) (frame uint32, idx, count uint8, key, ok bool) {
	d := 1
	if len(payload) > 1 && payload[0]&0x80 != 0 { // X
		x := payload[1]
		d++
		if x&0x80 != 0 { // I
			if len(payload) > d && payload[d]&0x80 != 0 {
				d += 2
			} else {
				d++
			}
		}
		if x&0x40 != 0 { // L
			d++
		}
		if x&0x30 != 0 { // T or K
			d++
		}
	}
	if len(payload) < d+17 {
		return 0, 0, 0, false, false
	}
	b := payload[d:]
	return bin.BigEndian.Uint32(b[10:]), b[14], b[15], b[16] == 1, true
}

// Scenario: media through the SFU with 5 % of the packets lost on one link (netem). Lost on the
// subscriber's link, the server answers the subscriber's NACKs from its packet cache; lost on the
// publisher's link, the server NACKs the publisher. Either way the subscriber decodes with no
// freeze beyond 500 ms, and the sfu-stats the server sends show the loss on the right link.
func TestSFULossRecoveredByNACK(t *testing.T) {
	n := newLossTopology(t)
	srv := n.startService(t)
	sess := srv.start(t) // a therapist (the subscriber) and patient 1 (the publisher)
	sub := joinFrom(t, srv, n.sub, n.subAddr, sess, therapistUUID, "sub")
	sub.run(nil)
	pub := joinFrom(t, srv, n.pub, n.pubAddr, sess, patient1UUID, "pub")
	pub.run(func() { pub.wg.Go(pub.publish) })

	testutil.Eventually(t, 20*time.Second, func() error {
		return testutil.Until(sub.lastFrame() > 60, "subscriber got %d frames", sub.lastFrame())
	})
	pubID := ""
	testutil.Eventually(t, 10*time.Second, func() error {
		s, ok := sub.lastStats()
		for id := range s.Up {
			pubID = id
		}
		return testutil.Until(ok && s.Down != nil && pubID != "", "no sfu-stats with the publisher yet: %+v", s)
	})

	for _, tc := range []struct {
		name  string
		toSub bool // lost on the way to the subscriber, else from the publisher
		// the link the loss must show on in the subscriber's sfu-stats, and the other one
		lossOf, cleanOf func(s lossStats) float64
	}{
		{"subscriber link", true, func(s lossStats) float64 { return s.Down.Loss }, func(s lossStats) float64 { return s.Up[pubID].Loss }},
		{"publisher link", false, func(s lossStats) float64 { return s.Up[pubID].Loss }, func(s lossStats) float64 { return s.Down.Loss }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resentBefore := srv.metric(t, "rehabrtc_sfu_resent_total")
			replayedBefore := srv.metric(t, "rehabrtc_sfu_read_replayed_total")
			defer n.drop(t, tc.toSub, 5)()
			from := sub.lastFrame() + 1
			// Let 10 s of media through the lossy link; meanwhile the loss shows in sfu-stats.
			var seen, clean float64
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				if s, ok := sub.lastStats(); ok && s.Down != nil {
					seen, clean = max(seen, tc.lossOf(s)), max(clean, tc.cleanOf(s))
				}
				time.Sleep(200 * time.Millisecond)
			}
			to := sub.lastFrame() - 15 // frames still on their way (retransmissions) are left out
			gap, decoded := sub.decodeGaps(from, to)
			t.Logf("5 %% loss on the %s: %d of %d frames decoded, longest gap %v; loss in sfu-stats up to %.1f %% (other link %.1f %%)",
				tc.name, decoded, to-from, gap.Round(time.Millisecond), seen*100, clean*100)
			if decoded < int(to-from)*95/100 {
				t.Errorf("only %d of %d frames decoded", decoded, to-from)
			}
			if gap > 500*time.Millisecond {
				t.Errorf("longest gap between decoded frames %v, want ≤ 500 ms", gap)
			}
			if seen < 0.02 {
				t.Errorf("sfu-stats showed up to %.3f loss on the %s, want the 5 %% to show", seen, tc.name)
			}
			// Loss to the subscriber is not the publisher's. (The other way round the subscriber's
			// own reports may count a packet the publisher has not resent yet: both show it.)
			if tc.toSub && clean >= 0.02 {
				t.Errorf("sfu-stats showed up to %.3f loss on the publisher's clean link", clean)
			}
			resent := srv.metric(t, "rehabrtc_sfu_resent_total") - resentBefore
			s, _ := sub.lastStats()
			t.Logf("server resent %v packets from its cache (subscriber: %d NACKed, %d resent in all)", resent, s.Down.NACKs, s.Down.Resent)
			if tc.toSub && resent == 0 {
				t.Error("the server's packet cache answered no NACK")
			}
			// Replays are retransmissions of packets the server already had: asked too early or too often.
			t.Logf("retransmissions that came as replays: %v", srv.metric(t, "rehabrtc_sfu_read_replayed_total")-replayedBefore)
			if !tc.toSub {
				t.Logf("the server asked the publisher for %v packets: %v repaired, %v given up; %v came late before it asked",
					srv.metric(t, "rehabrtc_sfu_publisher_nacked_total"), srv.metric(t, "rehabrtc_sfu_publisher_repaired_total"),
					srv.metric(t, "rehabrtc_sfu_publisher_gave_up_total"), srv.metric(t, "rehabrtc_sfu_publisher_late_total"))
			}
		})
	}
}
