package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// EngineConfig is what the process gives every router: the ICE sockets it
// owns and how its addresses look from outside.
type EngineConfig struct {
	// UDPMux carries ICE, DTLS and SRTP of every server peer connection on
	// one UDP port (webrtc.NewICEUDPMux over a socket the caller opened and
	// will close after every router is closed). Required.
	UDPMux ice.UDPMux
	// UDPConn is the socket under UDPMux. With it, subscribe connections
	// write their RTP themselves (encrypted with the connection's SRTP
	// keys, straight to this socket) instead of through pion's write
	// chain; without it, or where that cannot be done, pion writes.
	// Optional.
	UDPConn *net.UDPConn
	// ReadTap, when the UDPMux's socket is read through it (MuxConnWith),
	// lets the SFU read publishers' SRTP itself (srtpread.go): publish
	// connections then answer as DTLS server, so that their receive keys
	// are known, and each attached layer's packets are decrypted by the
	// layer, never by pion. Nil (or a tap no socket reads through): pion
	// reads. Optional.
	ReadTap *ReadTap
	// TCPMux adds ICE-TCP candidates on one TCP port (webrtc.NewICETCPMux
	// over the caller's listener), for networks that block UDP. Optional.
	TCPMux ice.TCPMux
	// NAT1To1IPs are public addresses to announce instead of the host's
	// own, for a cloud host behind 1:1 NAT. Optional.
	NAT1To1IPs []string
	// IncludeLoopback offers loopback candidates: only for tests and for a
	// browser on the same host.
	IncludeLoopback bool
	// Family is the IP family of the muxes' sockets, 4 or 6: only its
	// candidates are offered (an IPv6 candidate on an IPv4 socket is a path
	// no page can use). 0 offers both, for dual-stack sockets.
	Family int
	// ICEFailedTimeout is how long a connection without any ICE traffic
	// lives before it fails and its tracks are withdrawn. Default 10 s
	// (disconnected after 4 s).
	ICEFailedTimeout time.Duration
	Logger           *slog.Logger
}

// Engine holds what all routers of a process share: the configured pion
// APIs. It owns no goroutine and no socket, so it needs no Close.
type Engine struct {
	pubAPI *webrtc.API // peer connections that receive a participant's media
	// With a tap, publish connections get an API each too
	// (newPublishConnection), built from these.
	pubSE webrtc.SettingEngine
	pubME *webrtc.MediaEngine
	pubIR *interceptor.Registry
	tap   *ReadTap
	// Subscribe connections get an API each (newSubscribeConnection), built
	// from these: the SettingEngine's DTLS hooks are per connection.
	subSE    webrtc.SettingEngine
	subME    *webrtc.MediaEngine // copied by pion for every peer connection
	subIR    *interceptor.Registry
	udpConn  *net.UDPConn
	log      *slog.Logger
	links    *linkWatch // receiver reports per peer connection, for sfu-stats
	counters counters
}

// ICE timings: a peer whose network vanished is declared failed after
// about 10 s, so its tracks leave every page soon after (the hub's own
// heartbeat usually removes the peer first).
const (
	iceDisconnected = 4 * time.Second
	iceFailed       = 10 * time.Second
	iceKeepalive    = 2 * time.Second
)

// NewEngine builds the two pion APIs over one SettingEngine. They differ
// only in feedback: publishers get transport-cc feedback (their browser
// runs its own congestion control), while subscribers are offered REMB and
// no transport-cc, so a browser reports its receive estimate itself and the
// server runs no per-subscriber sender-side estimator on the hot path.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.UDPMux == nil {
		return nil, errors.New("sfu: EngineConfig.UDPMux is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(cfg.UDPMux)
	var nets []webrtc.NetworkType
	if cfg.Family != 6 {
		nets = append(nets, webrtc.NetworkTypeUDP4)
	}
	if cfg.Family != 4 {
		nets = append(nets, webrtc.NetworkTypeUDP6)
	}
	if cfg.TCPMux != nil {
		se.SetICETCPMux(cfg.TCPMux)
		if cfg.Family != 6 {
			nets = append(nets, webrtc.NetworkTypeTCP4)
		}
		if cfg.Family != 4 {
			nets = append(nets, webrtc.NetworkTypeTCP6)
		}
	}
	se.SetNetworkTypes(nets)
	if len(cfg.NAT1To1IPs) > 0 {
		se.SetNAT1To1IPs(cfg.NAT1To1IPs, webrtc.ICECandidateTypeHost)
	}
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	// No mDNS: the server's addresses are public by design, and mDNS would
	// send multicast on every interface.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	failed := iceFailed
	if cfg.ICEFailedTimeout > 0 {
		failed = cfg.ICEFailedTimeout
	}
	se.SetICETimeouts(min(iceDisconnected, failed/2), failed, min(iceKeepalive, failed/4))
	se.SetLite(false)

	links := newLinkWatch()
	pubME, pubIR, err := newMedia(true, links)
	if err != nil {
		return nil, fmt.Errorf("sfu: publisher API: %w", err)
	}
	subME, subIR, err := newMedia(false, links)
	if err != nil {
		return nil, fmt.Errorf("sfu: subscriber API: %w", err)
	}
	e := &Engine{pubSE: se, pubME: pubME, pubIR: pubIR, subSE: se, subME: subME, subIR: subIR,
		udpConn: cfg.UDPConn, log: cfg.Logger, links: links}
	e.pubAPI = webrtc.NewAPI(webrtc.WithMediaEngine(pubME), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(pubIR))
	if cfg.ReadTap.usable() {
		e.tap = cfg.ReadTap
	}
	return e, nil
}

// newPublishConnection makes a publish peer connection for offer and,
// with a read tap, its registration (nil without) and, with the UDP
// socket too, its direct path for the router's RTCP (nil without): an
// API of its own catches the connection's DTLS key material, as for
// subscribe connections.
func (e *Engine) newPublishConnection(offer *sdp.SessionDescription) (*webrtc.PeerConnection, *recvPath, *directPath, error) {
	if e.tap == nil {
		pc, err := e.pubAPI.NewPeerConnection(webrtc.Configuration{})
		return pc, nil, nil, err
	}
	se := e.pubSE
	kc := &keyCatcher{}
	se.SetDTLSKeyLogWriter(kc)
	se.SetDTLSServerHelloMessageHook(kc.serverHello)
	// A page offers actpass; answering passive makes the server the DTLS
	// server, the role in which its key log and ServerHello hook give the
	// keys (srtpkeys.go). Not to an offer that is passive itself: pion
	// would still write passive in the answer while acting as the client.
	if !offersSetup(offer, "passive") {
		if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
			return nil, nil, nil, err
		}
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(e.pubME), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(e.pubIR))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, nil, err
	}
	rp := newRecvPath(e.tap, kc, &e.counters)
	rp.dtls = pc.SCTP().Transport()
	dp := newDirectPath(e.udpConn, kc)
	if dp == nil {
		rp.dtls.ICETransport().OnSelectedCandidatePairChange(rp.setPair)
		return pc, rp, nil, nil
	}
	dp.dtls = rp.dtls
	// pion keeps one handler: both paths follow the pair through it.
	rp.dtls.ICETransport().OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) {
		rp.setPair(pair)
		dp.setPair(pair)
	})
	return pc, rp, dp, nil
}

// newSubscribeConnection makes a subscribe peer connection with its own
// API, whose SettingEngine catches this connection's DTLS key material
// (the key log and the ServerHello hook; see srtpkeys.go), the
// connection's own write path (nil without a UDP socket) and, with a read
// tap, its registration for the subscriber's SRTCP (srtcpread.go; nil
// without). The server offers actpass and pages answer active, so it is
// the DTLS server here, the role in which it knows both halves of the
// keys. NewAPI only wraps the shared engines: pion copies the MediaEngine
// per connection anyway and builds the interceptors from the shared
// registry.
func (e *Engine) newSubscribeConnection() (*webrtc.PeerConnection, *directPath, *recvPath, error) {
	se := e.subSE
	kc := &keyCatcher{}
	if e.udpConn != nil || e.tap != nil {
		se.SetDTLSKeyLogWriter(kc)
		se.SetDTLSServerHelloMessageHook(kc.serverHello)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(e.subME), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(e.subIR))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, nil, err
	}
	dtls := pc.SCTP().Transport()
	dp := newDirectPath(e.udpConn, kc)
	var rp *recvPath
	if e.tap != nil {
		rp = newRecvPath(e.tap, kc, &e.counters)
		rp.dtls = dtls
	}
	if dp != nil {
		dp.dtls = dtls
	}
	dtls.ICETransport().OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) {
		if dp != nil {
			dp.setPair(pair)
		}
		if rp != nil {
			rp.setPair(pair)
		}
	})
	return pc, dp, rp, nil
}

// offersSetup reports whether the offer's DTLS setup attribute (RFC 4145,
// session or first media level, as pion reads it) is role.
func offersSetup(offer *sdp.SessionDescription, role string) bool {
	if offer == nil {
		return false
	}
	if v, ok := offer.Attribute("setup"); ok {
		return v == role
	}
	for _, m := range offer.MediaDescriptions {
		if v, ok := m.Attribute("setup"); ok {
			return v == role
		}
	}
	return false
}

// maxNACKsPerPacket is how often the server asks a publisher again for
// one lost packet (libwebrtc gives up after 10).
const maxNACKsPerPacket = 5

// Codecs the server forwards. No RTX: retransmissions travel on the media
// SSRC, so one packet cache keyed by sequence number answers them.
var (
	codecVP8  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	codecH264 = webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}
	codecOpus = webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1",
	}
)

// newMedia is the codecs, header extensions and interceptors of one kind
// of connection.
func newMedia(publish bool, links *linkWatch) (*webrtc.MediaEngine, *interceptor.Registry, error) {
	m := &webrtc.MediaEngine{}
	videoFB := []webrtc.RTCPFeedback{
		{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"},
	}
	if !publish { // publishers get transport-cc below
		videoFB = append(videoFB, webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBGoogREMB})
	}
	vp8, h264 := codecVP8, codecH264
	vp8.RTCPFeedback, h264.RTCPFeedback = videoFB, videoFB
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: vp8, PayloadType: 96},
		{RTPCodecCapability: h264, PayloadType: 102},
	} {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, nil, err
		}
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: codecOpus, PayloadType: 111},
		webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, err
	}
	// No connection runs an interceptor on RTP. Subscribe side: pion's
	// sender-report interceptor took a lock on every forwarded packet and
	// ran goroutines per connection, so the router sends the reports itself
	// from each downTrack's counters (sendReports); NACKs are answered from
	// the router's cache and the estimate comes from the page's REMB. Such a
	// connection receives no RTP, so it has no receiver reports to make.
	// Publish side: see below. Both kinds keep links, which reads RTCP
	// only, among it the feedback the router writes.
	// An interceptor that writes RTCP would write SRTCP beside the
	// router's own writer (rtcpwrite.go), each with its index: the page
	// would drop one's packets as replays where their sender SSRCs meet.
	ir := &interceptor.Registry{}
	ir.Add(links)
	if publish {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI},
			webrtc.RTPCodecTypeAudio); err != nil {
			return nil, nil, err
		}
		if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
			return nil, nil, err
		}
		// Feedback to publishers (receiver reports, NACKs, transport-cc)
		// is the router's own, computed from the packets it forwards
		// (feedback.go): pion's interceptors wrapped every upstream read.
		// Negotiated as ConfigureTWCCSender would, without its interceptor.
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			m.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, kind)
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, kind); err != nil {
				return nil, nil, err
			}
		}
	}
	return m, ir, nil
}
