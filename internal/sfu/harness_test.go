package sfu

import (
	"encoding/binary"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
	"github.com/rehabrtc/rehabrtc/internal/rawudp"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(envBenchServer) == "1" {
		os.Exit(runBenchServer())
	}
	goleak.VerifyTestMain(m)
}

// routerAPI is what clients call: the in-process *Router, or a router in a
// child process (BenchmarkSession's server=process).
type routerAPI interface {
	Add(peer string) error
	Handle(peer string, m Message) error
}

// env is a router on a loopback UDP mux, with a signaler that routes
// messages to in-process pion clients (the hub's role).
type env struct {
	t      testing.TB
	conn   net.PacketConn
	mux    ice.UDPMux
	engine *Engine
	router *Router
	rt     routerAPI // router, or a remote one

	lean bool      // clients without interceptors (benchmarks)
	sent *arrivals // the lean clients' RTP sendto times (nil: not kept)

	mu      sync.Mutex
	clients map[string]*client
}

func newEnv(t testing.TB, cfg RouterConfig) *env {
	t.Helper()
	return newEnvWith(t, EngineConfig{}, cfg)
}

// newEnvWith also sets the engine's configuration; the UDP mux (read
// through a MuxConn with a read tap), loopback candidates and (unless
// given) the TCP mux are the env's.
func newEnvWith(t testing.TB, ecfg EngineConfig, cfg RouterConfig) *env {
	t.Helper()
	return newEnvTap(t, ecfg, cfg, true)
}

// newEnvTap is newEnvWith with the read tap on or off (pion reads every
// publisher).
func newEnvTap(t testing.TB, ecfg EngineConfig, cfg RouterConfig, tap bool) *env {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// As serve's socket: Don't Fragment, so every test forwards over it.
	if err := rawudp.DontFragment(conn); err != nil {
		t.Fatal(err)
	}
	ecfg.ReadTap = nil
	if tap {
		ecfg.ReadTap = NewReadTap()
	}
	e := &env{t: t, conn: conn, mux: webrtc.NewICEUDPMux(nil, MuxConnWith(conn, ecfg.ReadTap)), clients: map[string]*client{}}
	ecfg.UDPMux, ecfg.UDPConn, ecfg.IncludeLoopback = e.mux, conn, true
	e.engine, err = NewEngine(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	e.router = e.engine.NewRouter(cfg, e)
	e.rt = e.router
	t.Cleanup(func() {
		e.mu.Lock()
		cs := e.clients
		e.mu.Unlock()
		for _, c := range cs {
			c.close()
		}
		e.router.Close()
		_ = e.mux.Close()
		_ = conn.Close()
	})
	return e
}

// Signal queues m for the client; it never blocks, as the contract says.
func (e *env) Signal(peer string, m Message) {
	e.mu.Lock()
	c := e.clients[peer]
	e.mu.Unlock()
	if c == nil {
		return
	}
	select {
	case c.inbox <- m:
	default:
		e.t.Errorf("client %s: inbox full", peer)
	}
}

// clientAPI is a pion client much like a browser: VP8 and Opus, the
// simulcast and audio-level extensions, pion's default interceptors
// (receiver reports, NACK, TWCC); the tests add REMB and NACKs themselves.
func clientAPI(t testing.TB) *webrtc.API { return clientAPIWith(t, nil) }

// clientAPIWith is clientAPI with tweak, if any, applied to its
// SettingEngine, and extra interceptors configured after pion's defaults.
func clientAPIWith(t testing.TB, tweak func(*webrtc.SettingEngine), extra ...func(*webrtc.MediaEngine, *interceptor.Registry) error) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: webrtc.TypeRTCPFBGoogREMB}}
	must(t, m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb},
		PayloadType:        96}, webrtc.RTPCodecTypeVideo))
	must(t, m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		PayloadType:        111}, webrtc.RTPCodecTypeAudio))
	must(t, m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio))
	must(t, webrtc.ConfigureSimulcastExtensionHeaders(m))
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	// Loopback loses nothing, so the NACK test asks again for a packet it
	// received; SRTP replay protection would drop that retransmission.
	se.DisableSRTPReplayProtection(true)
	if tweak != nil {
		tweak(&se)
	}
	if len(extra) == 0 {
		return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
	}
	ir := &interceptor.Registry{}
	must(t, webrtc.RegisterDefaultInterceptors(m, ir))
	for _, f := range extra {
		must(t, f(m, ir))
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
}

// leanClientAPI is a client without interceptors: no reports, no NACK,
// no TWCC, so that in-process subscribers cost the benchmarks little. Its
// UDP sockets are stampConns registered in the returned stampSockets: a
// packet's socket arrival is known when its reader gets it, and the
// sendto time of each RTP packet it sends goes to sent.
func leanClientAPI(t testing.TB, sent *arrivals) (*webrtc.API, *stampSockets) {
	t.Helper()
	m := &webrtc.MediaEngine{}
	must(t, m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		PayloadType:        96}, webrtc.RTPCodecTypeVideo))
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	std, err := stdnet.NewNet()
	must(t, err)
	socks := &stampSockets{sent: sent}
	se.SetNet(stampNet{std, socks})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{})), socks
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// client is one participant: a pion publish and subscribe connection
// driven by the router's messages.
type client struct {
	e     *env
	id    string
	api   *webrtc.API
	inbox chan Message
	stop  chan struct{}
	wg    sync.WaitGroup

	mu       sync.Mutex
	pub, sub *webrtc.PeerConnection
	infos    map[string]TrackInfo // by mid, from the last subscribe offer
	recv     map[string]*recvTrack
	offers   int
	restarts int
	tracks   []TrackInfo // of the last subscribe offer
	speakers [][]string
	errs     []Message
	stats    []Message // sfu-stats
	layers   []Message // sfu-layers
	pubRTCP  []rtcp.Packet
	// onPacket, when set before join, replaces recording: each received
	// packet's raw bytes go to it (benchmarks), with the wall-clock ns of
	// its datagram's arrival on the client's socket (0: not known).
	onPacket func(b []byte, arrival int64)
	// socks are the lean client's UDP sockets (nil for other clients).
	socks *stampSockets
	// editOffer, when set before publish, rewrites the publish offer the
	// server gets (a client pion cannot configure so).
	editOffer func(sdp string) string
}

// recvTrack is a track the client receives, with every packet it got.
type recvTrack struct {
	info   TrackInfo
	remote *webrtc.TrackRemote
	rcv    *webrtc.RTPReceiver
	mu     sync.Mutex
	pkts   []rtp.Packet
	at     []time.Time
}

func (r *recvTrack) packets() []rtp.Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rtp.Packet(nil), r.pkts...)
}

// join adds a client; onPacket, if given, receives every media packet
// instead of the client recording them.
func (e *env) join(id string, onPacket ...func([]byte, int64)) *client {
	e.t.Helper()
	api := clientAPI(e.t)
	var socks *stampSockets
	if e.lean {
		api, socks = leanClientAPI(e.t, e.sent)
	}
	c := e.addClient(id, api)
	c.socks = socks
	if len(onPacket) > 0 {
		c.onPacket = onPacket[0]
	}
	c.wg.Go(c.run)
	return c
}

// addClient registers a client and Adds it to the router; its message
// loop is not started (join starts it).
func (e *env) addClient(id string, api *webrtc.API) *client {
	e.t.Helper()
	c := &client{e: e, id: id, api: api, inbox: make(chan Message, 1000), stop: make(chan struct{}),
		infos: map[string]TrackInfo{}, recv: map[string]*recvTrack{}}
	e.mu.Lock()
	e.clients[id] = c
	e.mu.Unlock()
	must(e.t, e.rt.Add(id))
	return c
}

func (c *client) close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	c.mu.Lock()
	pub, sub := c.pub, c.sub
	c.mu.Unlock()
	for _, pc := range []*webrtc.PeerConnection{pub, sub} {
		if pc != nil {
			_ = pc.Close()
		}
	}
	c.wg.Wait()
}

// stopped reports whether the client is closing: its peer connections'
// errors are expected then.
func (c *client) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// errorf reports a client error unless the client is closing.
func (c *client) errorf(format string, args ...any) {
	if !c.stopped() {
		c.e.t.Errorf(format, args...)
	}
}

func (c *client) run() {
	for {
		select {
		case <-c.stop:
			return
		case m := <-c.inbox:
			c.handle(m)
		}
	}
}

func (c *client) handle(m Message) {
	switch {
	case m.Type == TypeAnswer && m.PC == PCPublish:
		c.mu.Lock()
		pc := c.pub
		c.mu.Unlock()
		if pc == nil { // the test offered in this client's name by hand
			return
		}
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			c.errorf("%s: publish answer: %v", c.id, err)
		}
	case m.Type == TypeOffer && m.PC == PCSubscribe:
		c.answerSubscribe(m)
	case m.Type == TypeSpeakers:
		c.mu.Lock()
		c.speakers = append(c.speakers, m.Speakers)
		c.mu.Unlock()
	case m.Type == TypeError:
		c.mu.Lock()
		c.errs = append(c.errs, m)
		c.mu.Unlock()
	case m.Type == TypeStats:
		c.mu.Lock()
		c.stats = append(c.stats, m)
		c.mu.Unlock()
	case m.Type == TypeLayers:
		c.mu.Lock()
		c.layers = append(c.layers, m)
		c.mu.Unlock()
	default:
		c.errorf("%s: unexpected message %+v", c.id, m)
	}
}

func (c *client) answerSubscribe(m Message) {
	c.mu.Lock()
	c.offers++
	c.tracks = m.Tracks
	for _, ti := range m.Tracks {
		c.infos[ti.Mid] = ti
	}
	if m.Restart && c.sub != nil { // a new connection: drop the old one
		old := c.sub
		c.sub = nil
		c.restarts++
		clear(c.recv)
		c.mu.Unlock()
		_ = old.Close()
		c.mu.Lock()
	}
	if c.sub == nil {
		pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			c.mu.Unlock()
			c.errorf("%s: %v", c.id, err)
			return
		}
		pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) { c.onTrack(pc, t, r) })
		c.sub = pc
	}
	pc := c.sub
	c.mu.Unlock()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
		c.errorf("%s: subscribe offer: %v", c.id, err)
		return
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		c.errorf("%s: %v", c.id, err)
		return
	}
	g := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil { // the client may be closing (test end)
		c.errorf("%s: set answer: %v", c.id, err)
		return
	}
	<-g
	if err := c.e.rt.Handle(c.id, Message{Type: TypeAnswer, PC: PCSubscribe, SDP: pc.LocalDescription().SDP}); err != nil {
		c.errorf("%s: answer: %v", c.id, err)
	}
}

func (c *client) onTrack(pc *webrtc.PeerConnection, t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	mid := midOf(pc, rcv)
	c.mu.Lock()
	rt := &recvTrack{info: c.infos[mid], remote: t, rcv: rcv}
	c.recv[rt.info.ID] = rt
	c.mu.Unlock()
	if c.onPacket != nil {
		sock := c.socketOf(rcv)
		c.wg.Go(func() { c.readLean(t, sock) })
		return
	}
	c.wg.Go(func() {
		for {
			p, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			rt.mu.Lock()
			rt.pkts = append(rt.pkts, *p)
			rt.at = append(rt.at, time.Now())
			rt.mu.Unlock()
		}
	})
}

// track returns the received track with this id, waiting for it.
func (c *client) track(id string) *recvTrack {
	c.e.t.Helper()
	var rt *recvTrack
	eventually(c.e.t, 10*time.Second, "track "+id+" at "+c.id, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		rt = c.recv[id]
		return rt != nil
	})
	return rt
}

// publishCamMic publishes a VP8 camera and an Opus microphone under one
// stream id, the shape most forwarding tests need, and returns the two
// tracks and their senders (camera first).
func (c *client) publishCamMic(t testing.TB, id string) (video, audio *webrtc.TrackLocalStaticRTP, senders []*webrtc.RTPSender) {
	video, audio = localTrack(t, capVP8, "cam", id), localTrack(t, capOpus, "mic", id)
	return video, audio, c.publish([]webrtc.TrackLocal{video, audio}, []string{"camera", "mic"})
}

// publish offers the given tracks; sources names them by index.
func (c *client) publish(tracks []webrtc.TrackLocal, sources []string, simulcast ...*webrtc.TrackLocalStaticRTP) []*webrtc.RTPSender {
	c.e.t.Helper()
	c.mu.Lock()
	if c.pub == nil {
		pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
		must(c.e.t, err)
		c.pub = pc
	}
	pc := c.pub
	c.mu.Unlock()
	var senders []*webrtc.RTPSender
	for _, tr := range tracks {
		s, err := pc.AddTrack(tr)
		must(c.e.t, err)
		senders = append(senders, s)
	}
	if len(simulcast) > 0 {
		s, err := pc.AddTrack(simulcast[0])
		must(c.e.t, err)
		for _, l := range simulcast[1:] {
			must(c.e.t, s.AddEncoding(l))
		}
		senders = append(senders, s)
	}
	for _, s := range senders {
		for _, enc := range s.GetParameters().Encodings {
			c.wg.Go(func() { c.readPubRTCP(s, enc.RID) })
		}
	}
	c.offerPublish(pc, sources, false)
	return senders
}

func (c *client) offerPublish(pc *webrtc.PeerConnection, sources []string, restart bool) {
	c.e.t.Helper()
	offer, err := pc.CreateOffer(nil)
	must(c.e.t, err)
	g := webrtc.GatheringCompletePromise(pc)
	must(c.e.t, pc.SetLocalDescription(offer))
	<-g
	src := map[string]string{}
	for i, t := range pc.GetTransceivers() {
		if i < len(sources) {
			src[t.Mid()] = sources[i]
		}
	}
	sdp := pc.LocalDescription().SDP
	if c.editOffer != nil {
		sdp = c.editOffer(sdp)
	}
	must(c.e.t, c.e.rt.Handle(c.id, Message{Type: TypeOffer, PC: PCPublish, SDP: sdp,
		Sources: src, Restart: restart}))
}

// readPubRTCP records what the server sends the publisher about a track.
func (c *client) readPubRTCP(s *webrtc.RTPSender, rid string) {
	for {
		var pkts []rtcp.Packet
		var err error
		if rid == "" {
			pkts, _, err = s.ReadRTCP()
		} else {
			pkts, _, err = s.ReadSimulcastRTCP(rid)
		}
		if err != nil {
			return
		}
		c.mu.Lock()
		c.pubRTCP = append(c.pubRTCP, pkts...)
		c.mu.Unlock()
	}
}

func (c *client) publisherRTCP() []rtcp.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]rtcp.Packet(nil), c.pubRTCP...)
}

// sendRTCP sends RTCP on the subscribe connection.
func (c *client) sendRTCP(pkts ...rtcp.Packet) {
	c.mu.Lock()
	pc := c.sub
	c.mu.Unlock()
	if err := pc.WriteRTCP(pkts); err != nil {
		c.errorf("%s: write rtcp: %v", c.id, err)
	}
}

// eventually polls cond with testutil.Eventually; what says what is
// awaited.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, d, func() error { return testutil.Until(cond(), "still waiting for %s", what) })
}

// vp8Source generates VP8 RTP for one layer: frames of frameSize bytes at
// 30 fps, a keyframe every keyEvery frames or on request, packets of at
// most 1100 bytes. Each payload starts with a marker that names the layer
// and frame, so a test can tell what it received.
type vp8Source struct {
	layer     byte
	width     uint16
	height    uint16
	frameSize int
	keyEvery  int
	temporal  bool   // VP8 temporal layers 0,2,1,2…
	holeEvery uint16 // > 0: every holeEvery-th sequence number is never sent (lost on the way)

	seq      uint16
	ts       uint32
	pid      uint16
	frame    int
	keyAsked atomic.Bool
	sent     atomic.Int64 // frames made, for tests to compare with
}

const vp8PayloadMax = 1100

// next returns the packets of the next frame.
func (s *vp8Source) next() []*rtp.Packet {
	key := s.frame%s.keyEvery == 0 || s.keyAsked.Swap(false)
	tid := byte(0)
	if s.temporal {
		tid = [4]byte{0, 2, 1, 2}[s.frame%4]
	}
	body := make([]byte, s.frameSize)
	if key {
		body[0] = 0x10 // P=0: keyframe (show_frame set)
		copy(body[3:6], []byte{0x9d, 0x01, 0x2a})
		binary.LittleEndian.PutUint16(body[6:], s.width)
		binary.LittleEndian.PutUint16(body[8:], s.height)
	} else {
		body[0] = 0x11
	}
	var pkts []*rtp.Packet
	for off := 0; off < len(body); off += vp8PayloadMax {
		end := min(off+vp8PayloadMax, len(body))
		desc := []byte{0x80, 0x80, byte(0x80 | s.pid>>8), byte(s.pid)} // X, I, 15-bit picture id
		if off == 0 {
			desc[0] |= 0x10 // S
		}
		if s.temporal {
			desc[1] |= 0x20 // T
			desc = append(desc, tid<<6)
		}
		payload := append(desc, body[off:end]...)
		// A marker the tests read, after the 10-byte keyframe header:
		// layer and frame number.
		if len(payload) > len(desc)+12 {
			payload[len(desc)+10] = s.layer
			binary.BigEndian.PutUint16(payload[len(desc)+11:], uint16(s.frame))
		}
		pkts = append(pkts, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96,
			SequenceNumber: s.seq, Timestamp: s.ts, Marker: end == len(body)}, Payload: payload})
		s.seq++
		if s.holeEvery > 0 && s.seq%s.holeEvery == 0 {
			s.seq++
		}
	}
	s.frame++
	s.sent.Add(1)
	s.pid = (s.pid + 1) & 0x7fff
	s.ts += 3000
	return pkts
}

// layerOf reads the layer marker of a payload made by vp8Source.
func layerOf(p []byte) int {
	d := 4
	if len(p) > 1 && p[1]&0x20 != 0 {
		d = 5
	}
	if len(p) <= d+12 {
		return -1
	}
	return int(p[d+10])
}

// sender writes one vp8Source (or an audio source) to a local track at
// real rate until stopped; the rid and mid extensions are set for
// simulcast, and it answers PLIs by a keyframe.
type mediaPump struct {
	wg   sync.WaitGroup
	stop chan struct{}
}

func newPump() *mediaPump { return &mediaPump{stop: make(chan struct{})} }

func (m *mediaPump) close() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.wg.Wait()
}

// extIDs returns the negotiated ids of the mid and rid extensions.
func extIDs(s *webrtc.RTPSender) (mid, rid, level uint8) {
	for _, h := range s.GetParameters().HeaderExtensions {
		switch h.URI {
		case sdp.SDESMidURI:
			mid = uint8(h.ID)
		case sdp.SDESRTPStreamIDURI:
			rid = uint8(h.ID)
		case sdp.AudioLevelURI:
			level = uint8(h.ID)
		}
	}
	return
}

// video pumps src into track at 30 fps. midValue and ridValue, when set,
// go into the header extensions (needed for simulcast).
func (m *mediaPump) video(t testing.TB, track *webrtc.TrackLocalStaticRTP, s *webrtc.RTPSender, midValue string, src *vp8Source) {
	midID, ridID, _ := extIDs(s)
	m.wg.Go(func() {
		tk := time.NewTicker(time.Second / 30)
		defer tk.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tk.C:
			}
			for _, p := range src.next() {
				if midValue != "" {
					_ = p.Header.SetExtension(midID, []byte(midValue))
					_ = p.Header.SetExtension(ridID, []byte(track.RID()))
				}
				_ = track.WriteRTP(p) // fails only once the connection closes

			}
		}
	})
}

// audio pumps 20 ms Opus-sized packets with an audio level (−dBov).
func (m *mediaPump) audio(t testing.TB, track *webrtc.TrackLocalStaticRTP, s *webrtc.RTPSender, level byte) {
	_, _, levelID := extIDs(s)
	m.wg.Go(func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		var seq uint16
		var ts uint32
		for {
			select {
			case <-m.stop:
				return
			case <-tk.C:
			}
			p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts}, Payload: make([]byte, 80)}
			p.Payload[0] = byte(seq)
			if levelID != 0 {
				_ = p.Header.SetExtension(levelID, []byte{0x80 | level})
			}
			seq++
			ts += 960
			_ = track.WriteRTP(p)
		}
	})
}

// keyOnPLI makes src send a keyframe when the publisher is asked for one.
func (c *client) keyOnPLI(m *mediaPump, srcs map[uint32]*vp8Source) {
	m.wg.Go(func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		seen := 0
		for {
			select {
			case <-m.stop:
				return
			case <-tk.C:
			}
			pkts := c.publisherRTCP()
			for _, p := range pkts[seen:] {
				if pli, ok := p.(*rtcp.PictureLossIndication); ok {
					if src := srcs[pli.MediaSSRC]; src != nil {
						src.keyAsked.Store(true)
					} else if len(srcs) == 1 {
						for _, s := range srcs {
							s.keyAsked.Store(true)
						}
					}
				}
			}
			seen = len(pkts)
		}
	})
}

func (c *client) readLean(t *webrtc.TrackRemote, sock *stampConn) {
	buf := make([]byte, maxPacket)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		at, _ := sock.arrivalOf(buf[:n])
		c.onPacket(buf[:n], at)
	}
}

// socketOf returns the stampConn that rcv's connection receives on (its
// selected candidate's socket), nil if it cannot be told.
func (c *client) socketOf(rcv *webrtc.RTPReceiver) *stampConn {
	dt := rcv.Transport()
	if dt == nil || c.socks == nil {
		return nil
	}
	pair, err := dt.ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil {
		return nil
	}
	return c.socks.lookup(int(pair.Local.Port))
}
