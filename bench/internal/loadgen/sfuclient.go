package loadgen

// A synthetic participant of an SFU session: the session WebSocket of a
// page (join, then the sfu-* messages of docs/protocol.md) and two pion
// peer connections to the server, "pub" (a VP8 camera and an Opus mic made
// by vp8Gen) and "sub" (everyone else's tracks), as sfutransport.js holds.
//
// Lean on purpose, since the load tool shares the machine with the server:
// pion without any interceptor (no reports, NACK or TWCC; a REMB a second
// stands in for a browser's estimate; --w8-twcc adds the transport-wide
// sequence number stamp on what publishers send), one reused buffer per
// received track, the header parsed by hand. The clients cannot share one UDP
// socket (a client-side ice.UDPMux): the server's UDP mux tells its peer
// connections apart by the client's address, so each client connection
// needs an address of its own. Each of those sockets is a stampConn
// (sockstamp.go): the kernel's receive time of every RTP datagram is
// filed, so that a packet's delay is measured both at the socket (what the
// server added) and when the tool's reader gets it (what the tool added on
// top).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// sfuClientAPI is the pion API every synthetic participant shares: VP8 and
// Opus as Chromium offers them, the audio-level extension the router reads
// for active speakers, loopback ICE over UDP only, pion's logs dropped.
// Every UDP socket it opens is a stampConn registered in the returned
// stampSockets. With twcc, the one interceptor: pion's transport-wide
// sequence number stamp on what publishers send.
func sfuClientAPI(simulcast, twcc bool) (*webrtc.API, *stampSockets, error) {
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: webrtc.TypeRTCPFBGoogREMB}}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb},
		PayloadType:        96}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, nil, err
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, err
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, err
	}
	if simulcast { // mid and rid extensions: the server tells layers apart by rid
		if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
			return nil, nil, err
		}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	std, err := stdnet.NewNet()
	if err != nil {
		return nil, nil, err
	}
	socks := &stampSockets{}
	se.SetNet(bufferedNet{std, socks})
	se.LoggerFactory = &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled,
		ScopeLevels: map[string]logging.LogLevel{}}
	ir := &interceptor.Registry{}
	if twcc {
		if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, ir); err != nil {
			return nil, nil, err
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(ir)), socks, nil
}

// clientSocketBuffer is the receive buffer of each client UDP socket:
// the tool's core is shared by every client, so a subscriber's socket
// must hold its share of keyframe bursts while its reader waits, or the
// loss measured would be the tool's.
const clientSocketBuffer = 1 << 20

// bufferedNet is pion's standard network with clientSocketBuffer on every
// UDP socket ICE opens (best effort: capped by net.core.rmem_max), each
// wrapped in a stampConn.
type bufferedNet struct {
	*stdnet.Net
	socks *stampSockets
}

func (n bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	uc, ok := c.(*net.UDPConn)
	if !ok || err != nil {
		return c, err
	}
	_ = uc.SetReadBuffer(clientSocketBuffer)
	sc := newStampConn(uc, &n.socks.sent)
	n.socks.add(sc)
	return sc, nil
}

// sfuTally is what every participant of one run adds to. Readers keep
// their counts and samples locally and add them when their track ends.
type sfuTally struct {
	win      *measure     // the measured window, on clock()
	sent     atomic.Int64 // packets published with a send time in the window
	firsts   atomic.Int64 // subscriptions that have received media
	muted    atomic.Bool  // the publishers send nothing (the idle window)
	mu       sync.Mutex
	recv     int64           // packets received with a send time in the window
	bytes    int64           // their RTP bytes
	lat      []time.Duration // their send → application read delays
	sockLat  []time.Duration // their sendto → socket arrival delays
	sockKey  []uint64        // per sockLat: the published packet (SSRC<<16 | sequence number)
	noStamp  int64           // of them, packets whose arrival was not filed
	noSendto int64           // of them, packets whose sendto was not filed (the payload's stamp stood in)
	pubGap   []time.Duration // per published packet: the payload's stamp → the publisher's sendto
	readTime bool            // some socket filed read times, not the kernel's
	first    []time.Duration // per subscription: start of media signaling → first packet
	sfuErrs  []string        // sfu-error messages from the server
	failures []error         // client-side failures (negotiation)
}

func (t *sfuTally) fail(err error) {
	t.mu.Lock()
	t.failures = append(t.failures, err)
	t.mu.Unlock()
}

// sfuPeer is one synthetic participant.
type sfuPeer struct {
	api       *webrtc.API
	socks     *stampSockets // the API's sockets, by port
	noAudio   bool          // publish the camera alone
	simulcast bool          // publish the camera in three layers (q, h, f)
	tally     *sfuTally
	ws        *Peer
	publish   bool
	// peers maps the session's peer ids to their participants (the
	// publisher of a received track); set before the loops start.
	peers map[string]*sfuPeer
	// start is when this participant began its media signaling (clock()).
	start atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	pub    *webrtc.PeerConnection
	sub    *webrtc.PeerConnection
	infos  map[string]sfuTrackInfo // by mid, from the subscribe offers
	closed bool
	// firstDone holds the SSRCs whose first packet has been counted: a
	// renegotiation can make pion fire OnTrack again for a track that is
	// already flowing (seen when peers leave at the end of a scenario),
	// and that track's packet is no subscription's first media.
	firstDone map[uint32]bool
}

// firstOf reports whether ssrc's first packet is still to be counted as
// a subscription's first media, and marks it counted. Called with c.mu held.
func (c *sfuPeer) firstOf(ssrc uint32) bool {
	if c.firstDone[ssrc] {
		return false
	}
	c.firstDone[ssrc] = true
	return true
}

type sfuTrackInfo struct {
	Mid  string `json:"mid"`
	ID   string `json:"id"`
	Peer string `json:"peer"`
	Kind string `json:"kind"`
}

func newSFUPeer(api *webrtc.API, socks *stampSockets, tally *sfuTally, ws *Peer, publish bool) *sfuPeer {
	return &sfuPeer{api: api, socks: socks, tally: tally, ws: ws, publish: publish, stop: make(chan struct{}),
		infos: map[string]sfuTrackInfo{}, firstDone: map[uint32]bool{}}
}

// begin starts the participant's message loop and, for a publisher, its
// publish connection and media.
func (c *sfuPeer) begin() error {
	c.start.Store(clock())
	c.wg.Go(c.loop)
	if !c.publish {
		return nil
	}
	return c.startPublish()
}

// close ends the media, both peer connections and the WebSocket, and waits
// for every goroutine of the participant.
func (c *sfuPeer) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	pub, sub := c.pub, c.sub
	c.mu.Unlock()
	close(c.stop)
	for _, pc := range []*webrtc.PeerConnection{pub, sub} {
		if pc != nil {
			_ = pc.Close()
		}
	}
	_ = c.ws.Close()
	c.wg.Wait()
}

func (c *sfuPeer) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// loop reads the session WebSocket until it closes.
func (c *sfuPeer) loop() {
	for {
		m, err := c.ws.Read()
		if err != nil {
			if !c.isClosed() {
				c.tally.fail(fmt.Errorf("peer %s: session WebSocket: %w", c.ws.ID, err))
			}
			return
		}
		switch MsgType(m) {
		case "sfu-answer":
			c.onPublishAnswer(m)
		case "sfu-offer":
			c.onSubscribeOffer(m)
		case "sfu-error":
			c.tally.mu.Lock()
			c.tally.sfuErrs = append(c.tally.sfuErrs, string(m))
			c.tally.mu.Unlock()
		}
	}
}

// send writes one message on the WebSocket.
func (c *sfuPeer) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.ws.Send(b)
}

// negotiate sets desc as pc's local description once ICE gathering is
// complete (the server takes no trickled candidate from us: they are in
// the SDP), and returns the SDP.
func negotiate(pc *webrtc.PeerConnection, desc webrtc.SessionDescription) (string, error) {
	g := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return "", err
	}
	select {
	case <-g:
	case <-time.After(10 * time.Second):
		return "", errors.New("ICE gathering did not complete within 10 s")
	}
	return pc.LocalDescription().SDP, nil
}

// startPublish offers a camera and a mic, send-only, and starts their
// media pumps: packets written before the connection is up go nowhere,
// as a browser's before its DTLS handshake.
func (c *sfuPeer) startPublish() error {
	pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.pub = pc
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return pc.Close()
	}
	stream := "bench-" + c.ws.ID
	layers := simulcastLayers[2:] // the full camera alone
	if c.simulcast {
		layers = simulcastLayers
	}
	videos := make([]*webrtc.TrackLocalStaticRTP, len(layers))
	gens := make([]*vp8Gen, len(layers))
	for i, l := range layers {
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if c.simulcast {
			opts = append(opts, webrtc.WithRTPStreamID(l.rid))
		}
		if videos[i], err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			"camera", stream, opts...); err != nil {
			return err
		}
		gens[i] = &vp8Gen{width: l.width, height: l.height, deltaPackets: l.deltaPackets, keyPackets: l.keyPackets, packetBytes: l.packetBytes}
	}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", stream)
	if err != nil {
		return err
	}
	send := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}
	vt, err := pc.AddTransceiverFromTrack(videos[0], send)
	if err != nil {
		return err
	}
	for _, v := range videos[1:] {
		if err := vt.Sender().AddEncoding(v); err != nil {
			return err
		}
	}
	sources := map[string]string{}
	var at *webrtc.RTPTransceiver
	if !c.noAudio {
		if at, err = pc.AddTransceiverFromTrack(audio, send); err != nil {
			return err
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	sdpText, err := negotiate(pc, offer)
	if err != nil {
		return err
	}
	for i, l := range layers {
		rid := ""
		if c.simulcast {
			rid = l.rid
		}
		// Only the top layer reaches the subscribers here (they report a
		// large estimate and ask no tile size): it alone is counted.
		top := i == len(layers)-1
		c.wg.Go(func() { c.readPublishRTCP(vt.Sender(), rid, gens[i]) })
		ssrc := ssrcOf(vt.Sender(), rid)
		c.wg.Go(func() { c.pumpVideo(videos[i], vt.Sender(), ssrc, vt.Mid(), rid, gens[i], top) })
	}
	sources[vt.Mid()] = "camera"
	if at != nil {
		ssrc := ssrcOf(at.Sender(), "")
		c.wg.Go(func() { c.pumpAudio(audio, at.Sender(), ssrc) })
		sources[at.Mid()] = "mic"
	}
	return c.send(map[string]any{"type": "sfu-offer", "pc": "pub", "sdp": sdpText, "sources": sources})
}

func (c *sfuPeer) onPublishAnswer(m []byte) {
	var a struct {
		PC  string `json:"pc"`
		SDP string `json:"sdp"`
	}
	if err := json.Unmarshal(m, &a); err != nil || a.PC != "pub" {
		c.tally.fail(fmt.Errorf("peer %s: unexpected sfu-answer: %.200s", c.ws.ID, m))
		return
	}
	c.mu.Lock()
	pc := c.pub
	c.mu.Unlock()
	if pc == nil {
		return
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a.SDP}); err != nil && !c.isClosed() {
		c.tally.fail(fmt.Errorf("peer %s: publish answer: %w", c.ws.ID, err))
	}
}

// ssrcOf is the SSRC the sender sends the layer rid ("": its only one) on.
func ssrcOf(s *webrtc.RTPSender, rid string) uint32 {
	for _, e := range s.GetParameters().Encodings {
		if e.RID == rid {
			return uint32(e.SSRC)
		}
	}
	return 0
}

// readPublishRTCP answers the server's keyframe requests (PLI, FIR) with
// a keyframe, as a browser's encoder does.
func (c *sfuPeer) readPublishRTCP(s *webrtc.RTPSender, rid string, gen *vp8Gen) {
	buf := make([]byte, 1500)
	for {
		var n int
		var err error
		if rid == "" {
			n, _, err = s.Read(buf)
		} else {
			n, _, err = s.ReadSimulcast(buf, rid)
		}
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				gen.keyAsked.Store(true)
			}
		}
	}
}

// pumpVideo sends 30 frames a second; a frame's packets leave about 1 ms
// apart, as a browser's pacer sends them, so a keyframe is a 24 ms burst.
// A simulcast layer (rid set) carries the mid and rid extensions, as a
// browser's do. Packets are counted as sent when count is set, and then
// how long each took from its stamp to its sendto (pion's write chain and
// encryption, and the tool's scheduling) is kept.
func (c *sfuPeer) pumpVideo(track *webrtc.TrackLocalStaticRTP, s *webrtc.RTPSender, ssrc uint32, mid, rid string, gen *vp8Gen, count bool) {
	var gaps []time.Duration
	defer func() {
		c.tally.mu.Lock()
		c.tally.pubGap = append(c.tally.pubGap, gaps...)
		c.tally.mu.Unlock()
	}()
	tk := time.NewTicker(time.Second / 30)
	defer tk.Stop()
	pace := time.NewTimer(time.Hour) // one timer for the 1 ms gaps, not one per packet
	pace.Stop()
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}}
	extSet := rid == ""
	for {
		select {
		case <-c.stop:
			return
		case <-tk.C:
		}
		if !extSet { // the extensions' ids are known once the answer is in
			var midID, ridID uint8
			for _, h := range s.GetParameters().HeaderExtensions {
				switch h.URI {
				case sdp.SDESMidURI:
					midID = uint8(h.ID)
				case sdp.SDESRTPStreamIDURI:
					ridID = uint8(h.ID)
				}
			}
			if midID != 0 && ridID != 0 {
				extSet = pkt.Header.SetExtension(midID, []byte(mid)) == nil && pkt.Header.SetExtension(ridID, []byte(rid)) == nil
			}
		}
		if c.tally.muted.Load() {
			continue
		}
		payloads, _, seq, ts := gen.frame()
		for i, p := range payloads {
			if i > 0 {
				pace.Reset(time.Millisecond)
				select {
				case <-c.stop:
					return
				case <-pace.C:
				}
			}
			now := clock()
			putStamp(p, sendStamp{ssrc, seq + uint16(i), now})
			pkt.SequenceNumber, pkt.Timestamp, pkt.Marker, pkt.Payload = seq+uint16(i), ts, i == len(payloads)-1, p
			if track.WriteRTP(&pkt) == nil && count && c.tally.win.in(now) {
				c.tally.sent.Add(1)
				if at, ok := c.socks.sent.get(ssrc, pkt.SequenceNumber); ok {
					gaps = append(gaps, time.Duration(at-now))
				}
			}
		}
	}
}

// pumpAudio sends a 100-byte Opus packet every 20 ms (40 kbit/s) with an
// audio level (a speaking participant at −30 dBov).
func (c *sfuPeer) pumpAudio(track *webrtc.TrackLocalStaticRTP, s *webrtc.RTPSender, ssrc uint32) {
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	payload := make([]byte, opusBytes)
	payload[0] = 0x78 // Opus TOC: SILK+CELT hybrid, 20 ms
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111}, Payload: payload}
	levelSet := false
	for {
		select {
		case <-c.stop:
			return
		case <-tk.C:
		}
		if !levelSet { // the extension's id is known once the answer is in
			for _, h := range s.GetParameters().HeaderExtensions {
				if h.URI == sdp.AudioLevelURI {
					levelSet = pkt.Header.SetExtension(uint8(h.ID), []byte{0x80 | 30}) == nil
				}
			}
		}
		if c.tally.muted.Load() {
			continue
		}
		now := clock()
		putStamp(payload, sendStamp{ssrc, pkt.SequenceNumber, now})
		if track.WriteRTP(&pkt) == nil && c.tally.win.in(now) {
			c.tally.sent.Add(1)
		}
		pkt.SequenceNumber++
		pkt.Timestamp += 960
	}
}

// onSubscribeOffer answers the server's subscribe offer, on a new peer
// connection for the first one and for a restart.
func (c *sfuPeer) onSubscribeOffer(m []byte) {
	var o struct {
		PC      string         `json:"pc"`
		SDP     string         `json:"sdp"`
		Restart bool           `json:"restart"`
		Tracks  []sfuTrackInfo `json:"tracks"`
	}
	if err := json.Unmarshal(m, &o); err != nil || o.PC != "sub" {
		c.tally.fail(fmt.Errorf("peer %s: unexpected sfu-offer: %.200s", c.ws.ID, m))
		return
	}
	pc, err := c.subscribeConn(o.Restart)
	if err != nil {
		c.tally.fail(fmt.Errorf("peer %s: subscribe connection: %w", c.ws.ID, err))
		return
	}
	if pc == nil { // closing
		return
	}
	c.mu.Lock()
	for _, t := range o.Tracks {
		c.infos[t.Mid] = t
	}
	c.mu.Unlock()
	err = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: o.SDP})
	var ans webrtc.SessionDescription
	if err == nil {
		ans, err = pc.CreateAnswer(nil)
	}
	var sdpText string
	if err == nil {
		sdpText, err = negotiate(pc, ans)
	}
	if err == nil {
		err = c.send(map[string]any{"type": "sfu-answer", "pc": "sub", "sdp": sdpText})
	}
	if err != nil && !c.isClosed() {
		c.tally.fail(fmt.Errorf("peer %s: subscribe answer: %w", c.ws.ID, err))
	}
}

// subscribeConn returns the subscribe connection, making a new one when
// there is none or the server restarts it; nil once the peer is closing.
func (c *sfuPeer) subscribeConn(restart bool) (*webrtc.PeerConnection, error) {
	c.mu.Lock()
	old := c.sub
	if c.closed {
		c.mu.Unlock()
		return nil, nil
	}
	if old != nil && !restart {
		c.mu.Unlock()
		return old, nil
	}
	c.sub = nil
	c.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) { c.onTrack(pc, t, r) })
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, pc.Close()
	}
	c.sub = pc
	c.mu.Unlock()
	c.wg.Go(func() { c.sendREMB(pc) })
	return pc, nil
}

// sendREMB reports a generous receive estimate once a second, as a
// browser's REMB does, so that the server's allocator forwards every track.
func (c *sfuPeer) sendREMB(pc *webrtc.PeerConnection) {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	var ssrcs []uint32
	for {
		select {
		case <-c.stop:
			return
		case <-tk.C:
		}
		if pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
			return
		}
		ssrcs = ssrcs[:0]
		for _, r := range pc.GetReceivers() {
			if t := r.Track(); t != nil && t.Kind() == webrtc.RTPCodecTypeVideo {
				ssrcs = append(ssrcs, uint32(t.SSRC()))
			}
		}
		if len(ssrcs) == 0 {
			continue
		}
		_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 30e6, SSRCs: ssrcs}})
	}
}

// onTrack starts reading a received track.
func (c *sfuPeer) onTrack(pc *webrtc.PeerConnection, t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	mid := ""
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == r {
			mid = tr.Mid()
		}
	}
	// Media became possible once both this participant and the
	// publisher had started their media signaling.
	c.mu.Lock()
	defer c.mu.Unlock() // held across wg.Go, so close's Wait comes after it
	if c.closed {
		return
	}
	ref := c.start.Load()
	if pub := c.peers[c.infos[mid].Peer]; pub != nil {
		ref = max(ref, pub.start.Load())
	}
	arr, kernel := c.arrivalsOf(r)
	count := c.firstOf(uint32(t.SSRC()))
	c.wg.Go(func() { c.read(t, ref, count, arr, kernel) })
}

// arrivalsOf returns the socket arrivals of the connection r receives on
// (its selected candidate's socket), nil if it cannot be told.
func (c *sfuPeer) arrivalsOf(r *webrtc.RTPReceiver) (*arrivals, bool) {
	dt := r.Transport()
	if dt == nil || c.socks == nil {
		return nil, false
	}
	pair, err := dt.ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil {
		return nil, false
	}
	return c.socks.lookup(int(pair.Local.Port))
}

// read counts a track's packets and their delays until it ends: at the
// application (now) and at the socket (arr, the datagram's kernel receive
// time, or the socket read's return when kernel is false); with
// countFirst, its first packet's delay from ref is the subscription's
// join to first media.
func (c *sfuPeer) read(t *webrtc.TrackRemote, ref int64, countFirst bool, arr *arrivals, kernel bool) {
	buf := make([]byte, 1500)
	var (
		lat, sockLat                   []time.Duration
		sockKey                        []uint64
		recv, bytes, noStamp, noSendto int64
		first                          = countFirst
	)
	defer func() {
		c.tally.mu.Lock()
		c.tally.recv += recv
		c.tally.bytes += bytes
		c.tally.lat = append(c.tally.lat, lat...)
		c.tally.sockLat = append(c.tally.sockLat, sockLat...)
		c.tally.sockKey = append(c.tally.sockKey, sockKey...)
		c.tally.noStamp += noStamp
		c.tally.noSendto += noSendto
		c.tally.readTime = c.tally.readTime || (arr != nil && !kernel)
		c.tally.mu.Unlock()
	}()
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		now := clock()
		if first {
			first = false
			c.tally.mu.Lock()
			c.tally.first = append(c.tally.first, time.Duration(now-ref))
			c.tally.mu.Unlock()
			c.tally.firsts.Add(1)
		}
		st, ok := rtpStamp(buf[:n])
		if !ok || !c.tally.win.in(st.t) {
			continue
		}
		recv++
		bytes += int64(n)
		lat = append(lat, time.Duration(now-st.t))
		sendto, ok := c.socks.sent.get(st.ssrc, st.seq)
		if !ok {
			sendto = st.t
			noSendto++
		}
		if at, ok := arr.arrivalOf(buf[:n]); ok {
			sockLat = append(sockLat, time.Duration(at-sendto))
			sockKey = append(sockKey, uint64(st.ssrc)<<16|uint64(st.seq))
		} else {
			noStamp++
		}
	}
}

// joinSFU joins n participants of one session (the first is the user, who
// started it) and returns them, each with its WebSocket open and no media
// yet.
func joinSFU(ctx context.Context, srv *Server, s *Session, uuids []string) ([]*Peer, error) {
	peers := make([]*Peer, len(uuids))
	err := parallel(ctx, len(uuids), 8, func(i int) error {
		jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		p, err := Join(jctx, srv.WSAddr(), s.Port, KeyOf(s.Link(uuids[i])), uuids[i], fmt.Sprintf("sfu%d", i), smallRBuf)
		peers[i] = p
		return err
	})
	if err != nil {
		for _, p := range peers {
			if p != nil {
				p.CloseNow()
			}
		}
		return nil, err
	}
	return peers, nil
}
