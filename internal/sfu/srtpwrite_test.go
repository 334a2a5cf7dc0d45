package sfu

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	dtlsnet "github.com/pion/dtls/v3/pkg/net"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/rehabrtc/rehabrtc/internal/rawudp"
)

// handshake runs a real pion DTLS handshake over a pipe, with the key
// catcher's hooks on the server (or, with catchOnClient, on the client) and
// returns the catcher and the server's and client's connection states.
func dtlsHandshake(t *testing.T, suite dtls.CipherSuiteID, profile dtls.SRTPProtectionProfile,
	ems dtls.ExtendedMasterSecretType, catchOnClient bool,
) (*keyCatcher, dtls.State, dtls.State) {
	t.Helper()
	cert, err := selfsign.GenerateSelfSigned()
	must(t, err)
	kc := &keyCatcher{}
	cfg := func() *dtls.Config {
		return &dtls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true,
			CipherSuites: []dtls.CipherSuiteID{suite}, SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{profile},
			ExtendedMasterSecret: ems}
	}
	scfg, ccfg := cfg(), cfg()
	if catchOnClient {
		ccfg.KeyLogWriter, ccfg.ServerHelloMessageHook = kc, kc.serverHello
	} else {
		scfg.KeyLogWriter, scfg.ServerHelloMessageHook = kc, kc.serverHello
	}
	a, b := net.Pipe()
	type result struct {
		c   *dtls.Conn
		err error
	}
	srvCh := make(chan result, 1)
	go func() {
		c, err := dtls.Server(dtlsnet.PacketConnFromConn(a), b.RemoteAddr(), scfg)
		if err == nil {
			err = handshakeWithin(c)
		}
		srvCh <- result{c, err}
	}()
	cli, err := dtls.Client(dtlsnet.PacketConnFromConn(b), a.RemoteAddr(), ccfg)
	must(t, err)
	must(t, handshakeWithin(cli))
	srv := <-srvCh
	must(t, srv.err)
	t.Cleanup(func() { _ = cli.Close(); _ = srv.c.Close() })
	ss, ok1 := srv.c.ConnectionState()
	cs, ok2 := cli.ConnectionState()
	if !ok1 || !ok2 {
		t.Fatal("no connection state")
	}
	return kc, ss, cs
}

func handshakeWithin(c *dtls.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.HandshakeContext(ctx)
}

// TestSRTPKeysMatchPion: the keys derived from the key log and the
// ServerHello hook are the ones pion's own exporter gives the server (and
// the client's peer ones), for every suite hash and SRTP profile.
func TestSRTPKeysMatchPion(t *testing.T) {
	for _, tc := range []struct {
		name    string
		suite   dtls.CipherSuiteID
		dprof   dtls.SRTPProtectionProfile
		profile srtp.ProtectionProfile
		ems     dtls.ExtendedMasterSecretType
	}{
		{"AES-128-GCM suite, AEAD-128 SRTP", dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			dtls.SRTP_AEAD_AES_128_GCM, srtp.ProtectionProfileAeadAes128Gcm, dtls.RequireExtendedMasterSecret},
		{"SHA-384 suite, AEAD-256 SRTP", dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			dtls.SRTP_AEAD_AES_256_GCM, srtp.ProtectionProfileAeadAes256Gcm, dtls.RequestExtendedMasterSecret},
		{"CBC suite, AES-CM SRTP, no extended master secret", dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
			dtls.SRTP_AES128_CM_HMAC_SHA1_80, srtp.ProtectionProfileAes128CmHmacSha1_80, dtls.DisableExtendedMasterSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc, ss, cs := dtlsHandshake(t, tc.suite, tc.dprof, tc.ems, false)
			got, err := kc.srtpKeys()
			must(t, err)
			want := srtp.Config{Profile: tc.profile}
			must(t, want.ExtractSessionKeysFromDTLS(&ss, false))
			peer := srtp.Config{Profile: tc.profile}
			must(t, peer.ExtractSessionKeysFromDTLS(&cs, true))
			if got.profile != tc.profile {
				t.Errorf("profile %v, want %v", got.profile, tc.profile)
			}
			if !bytes.Equal(got.key, want.Keys.LocalMasterKey) || !bytes.Equal(got.salt, want.Keys.LocalMasterSalt) {
				t.Error("derived keys differ from pion's exporter")
			}
			if !bytes.Equal(got.key, peer.Keys.RemoteMasterKey) || !bytes.Equal(got.salt, peer.Keys.RemoteMasterSalt) {
				t.Error("derived keys differ from the client's view of the server's keys")
			}
			if kc.master != nil {
				t.Error("the master secret is kept after derivation")
			}
			// What the server encrypts, the client decrypts.
			enc, err := srtp.CreateContext(got.key, got.salt, got.profile)
			must(t, err)
			dec, err := srtp.CreateContext(peer.Keys.RemoteMasterKey, peer.Keys.RemoteMasterSalt, tc.profile)
			must(t, err)
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, SSRC: 42},
				Payload: []byte("forwarded")}
			raw, err := pkt.Marshal()
			must(t, err)
			ct, err := enc.EncryptRTP(nil, raw, nil)
			must(t, err)
			pt, err := dec.DecryptRTP(nil, ct, nil)
			must(t, err)
			if !bytes.Equal(pt, raw) {
				t.Error("the client decrypts something else")
			}
			// The receive direction (the read tap): the peer's keys are the
			// client's own, and what it encrypts, the server decrypts.
			if !bytes.Equal(got.remoteKey, want.Keys.RemoteMasterKey) || !bytes.Equal(got.remoteSalt, want.Keys.RemoteMasterSalt) ||
				!bytes.Equal(got.remoteKey, peer.Keys.LocalMasterKey) || !bytes.Equal(got.remoteSalt, peer.Keys.LocalMasterSalt) {
				t.Error("derived receive keys differ from pion's")
			}
			cenc, err := srtp.CreateContext(peer.Keys.LocalMasterKey, peer.Keys.LocalMasterSalt, tc.profile)
			must(t, err)
			sdec, err := srtp.CreateContext(got.remoteKey, got.remoteSalt, got.profile)
			must(t, err)
			ct, err = cenc.EncryptRTP(nil, raw, nil)
			must(t, err)
			pt, err = sdec.DecryptRTP(ct[:0:0], ct, nil)
			must(t, err)
			if !bytes.Equal(pt, raw) {
				t.Error("the server decrypts something else than the client sent")
			}
		})
	}
	t.Run("server in the DTLS client role", func(t *testing.T) {
		kc, _, _ := dtlsHandshake(t, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AEAD_AES_128_GCM,
			dtls.RequestExtendedMasterSecret, true)
		if _, err := kc.srtpKeys(); err == nil {
			t.Error("keys derived without our own ServerHello")
		}
	})
}

// TestKeyCatcherRejectsBadLines: malformed key log input is ignored, never
// a panic, and leaves no keys.
func TestKeyCatcherRejectsBadLines(t *testing.T) {
	for _, line := range []string{
		"", "\n", "CLIENT_RANDOM\n", "CLIENT_RANDOM zz zz\n",
		"CLIENT_RANDOM " + strings.Repeat("ab", 31) + " 00\n",
		"CLIENT_RANDOM " + strings.Repeat("ab", 32) + " xyz\n",
		"CLIENT_TRAFFIC_SECRET_0 " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 48) + "\n",
	} {
		kc := &keyCatcher{server: true, profileOK: true, suite: uint16(dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
			profile: srtp.ProtectionProfileAeadAes128Gcm}
		if n, err := kc.Write([]byte(line)); n != len(line) || err != nil {
			t.Errorf("%q: Write = %d, %v", line, n, err)
		}
		if _, err := kc.srtpKeys(); err == nil {
			t.Errorf("%q: keys derived", line)
		}
	}
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOwnWriterCarriesMedia: with the UDP socket configured, subscribers
// (real pion peers, which decrypt what the server sends) receive
// continuous media written by the server's own SRTP writer, none by pion's;
// and neither the master secret (from the subscriber's own key log) nor
// the server's SRTP key appears in any of the server's log lines, at debug
// level.
func TestOwnWriterCarriesMedia(t *testing.T) {
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnvWith(t, EngineConfig{Logger: log}, RouterConfig{})
	clientLog := &syncBuffer{}
	bob := e.addClient("bob", clientAPIWith(t, func(se *webrtc.SettingEngine) { se.SetDTLSKeyLogWriter(clientLog) }))
	bob.wg.Go(bob.run)
	alice := e.join("alice")
	publishCamera(t, alice, 30)
	checkContinuous(t, waitPackets(t, bob.track("alice/cam"), 60))
	checkContinuous(t, waitPackets(t, bob.track("alice/mic"), 25))
	if c := e.engine.Counters(); c.OwnWriters != 2 || c.PionWriters != 0 {
		t.Errorf("writers: own %d, pion %d; want 2 own", c.OwnWriters, c.PionWriters)
	}

	var secrets []string
	for _, f := range strings.Fields(clientLog.String()) {
		if len(f) == 96 { // the 48-byte master secret, in hex
			secrets = append(secrets, f)
		}
	}
	e.router.mu.Lock()
	p := e.router.peers["bob"]
	e.router.mu.Unlock()
	p.mu.Lock()
	keys, err := p.subPath.keys.srtpKeys()
	p.mu.Unlock()
	must(t, err)
	for _, k := range [][]byte{keys.key, keys.salt} {
		secrets = append(secrets, hex.EncodeToString(k), strings.ToUpper(hex.EncodeToString(k)),
			base64.StdEncoding.EncodeToString(k), string(k))
	}
	if len(secrets) < 9 {
		t.Fatalf("the client's key log gave no master secret: %q", clientLog.String())
	}
	out := logs.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatal("a secret appears in the server's log")
		}
	}
}

// TestOwnWriterFallbackDTLSClient: a subscriber that answers as the DTLS
// server makes the server the DTLS client, which never sees its own
// ServerHello: pion keeps writing, and media still flows.
func TestOwnWriterFallbackDTLSClient(t *testing.T) {
	e := newEnv(t, RouterConfig{})
	bob := e.addClient("bob", clientAPIWith(t, func(se *webrtc.SettingEngine) {
		must(t, se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer))
	}))
	bob.wg.Go(bob.run)
	alice := e.join("alice")
	publishCamera(t, alice, 30)
	checkContinuous(t, waitPackets(t, bob.track("alice/cam"), 60))
	checkContinuous(t, waitPackets(t, bob.track("alice/mic"), 25))
	if c := e.engine.Counters(); c.OwnWriters != 0 || c.PionWriters != 2 {
		t.Errorf("writers: own %d, pion %d; want 2 pion", c.OwnWriters, c.PionWriters)
	}
}

func udpPair(remote string, port uint16, proto webrtc.ICEProtocol, local webrtc.ICECandidateType) *webrtc.ICECandidatePair {
	return webrtc.NewICECandidatePair(
		&webrtc.ICECandidate{Protocol: webrtc.ICEProtocolUDP, Typ: local, Address: "127.0.0.1", Port: 5000},
		&webrtc.ICECandidate{Protocol: proto, Typ: webrtc.ICECandidateTypePrflx, Address: remote, Port: port})
}

// TestDirectPathFollowsPair: the writer sends to the selected pair's
// remote address, follows a change of it, and stops (asking for a new
// connection, once) when the pair moves where the socket cannot write;
// each datagram is SRTP the receiver's context decrypts.
func TestDirectPathFollowsPair(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	must(t, err)
	defer conn.Close()
	var rx [2]*net.UDPConn
	for i := range rx {
		rx[i], err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		must(t, err)
		defer rx[i].Close()
	}
	key, salt := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 12)
	dp := newDirectPath(conn, &keyCatcher{})
	lost := 0
	f := func() { lost++ }
	dp.lost.Store(&f)

	for _, tc := range []struct {
		name string
		pair *webrtc.ICECandidatePair
		ok   bool
	}{
		{"IPv4 UDP", udpPair("127.0.0.1", 9, webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost), true},
		{"TCP remote", udpPair("127.0.0.1", 9, webrtc.ICEProtocolTCP, webrtc.ICECandidateTypeHost), false},
		{"relayed local", udpPair("127.0.0.1", 9, webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeRelay), false},
		{"IPv6 on an IPv4 socket", udpPair("::1", 9, webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost), false},
		{"mDNS name", udpPair("x.local", 9, webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost), false},
		{"no port", udpPair("127.0.0.1", 0, webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost), false},
		{"nil", nil, false},
	} {
		if _, ok := dp.pairAddr(tc.pair); ok != tc.ok {
			t.Errorf("%s: eligible %v, want %v", tc.name, ok, tc.ok)
		}
	}

	ctx, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	must(t, err)
	dec, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	must(t, err)
	out, err := rawudp.NewSender(conn, false)
	must(t, err)
	w := &ownWriter{path: dp, ctx: ctx, out: out}
	var buf sendBuf
	dp.used.Store(true)
	seq := uint16(100)
	send := func() error {
		seq++
		h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, SSRC: 7}
		_, err := w.write(&h, []byte("payload"), &buf)
		return err
	}
	expect := func(c *net.UDPConn) {
		t.Helper()
		buf := make([]byte, 1500)
		must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		n, err := c.Read(buf)
		must(t, err)
		var h rtp.Header
		pt, err := dec.DecryptRTP(nil, buf[:n], &h)
		must(t, err)
		if h.SequenceNumber != seq || !bytes.HasSuffix(pt, []byte("payload")) {
			t.Fatalf("got seq %d, want %d", h.SequenceNumber, seq)
		}
	}
	for _, r := range rx {
		a := r.LocalAddr().(*net.UDPAddr)
		dp.setPair(udpPair("127.0.0.1", uint16(a.Port), webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost))
		must(t, send())
		expect(r)
	}
	dp.setPair(udpPair("127.0.0.1", 9, webrtc.ICEProtocolTCP, webrtc.ICECandidateTypeHost))
	if err := send(); err != errPathLost {
		t.Errorf("write after the pair moved to TCP: %v", err)
	}
	dp.setPair(nil)
	if lost != 1 {
		t.Errorf("lost called %d times, want 1", lost)
	}
}

// TestMuxConn: the mux socket's raw reads and writes carry datagrams both
// ways with the sender's address, honour the read deadline, and end with
// the socket's close.
func TestMuxConn(t *testing.T) {
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	must(t, err)
	mc := MuxConn(uc)
	rw, ok := mc.(ice.AddrPortReaderWriter)
	if !ok {
		t.Fatal("MuxConn is not an ice.AddrPortReaderWriter: pion would convert every address")
	}
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	must(t, err)
	defer peer.Close()
	peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort()

	_, err = peer.WriteToUDPAddrPort([]byte("ping"), uc.LocalAddr().(*net.UDPAddr).AddrPort())
	must(t, err)
	must(t, mc.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 1500)
	n, from, err := rw.ReadFromAddrPort(buf)
	must(t, err)
	if string(buf[:n]) != "ping" || from != peerAddr {
		t.Fatalf("read %q from %v, want ping from %v", buf[:n], from, peerAddr)
	}
	if _, err := rw.WriteToAddrPort([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.WriteTo([]byte("pong2"), net.UDPAddrFromAddrPort(from)); err != nil {
		t.Fatal(err)
	}
	must(t, peer.SetReadDeadline(time.Now().Add(5*time.Second)))
	for _, want := range []string{"pong", "pong2"} {
		n, err := peer.Read(buf)
		must(t, err)
		if string(buf[:n]) != want {
			t.Fatalf("peer read %q, want %q", buf[:n], want)
		}
	}
	if _, err := rw.WriteToAddrPort([]byte("x"), netip.MustParseAddrPort("[::1]:9")); err == nil {
		t.Error("an IPv6 address written on an IPv4 socket")
	}

	must(t, mc.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	if _, _, err := mc.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	must(t, mc.SetReadDeadline(time.Time{}))
	done := make(chan error, 1)
	go func() { _, _, err := rw.ReadFromAddrPort(buf); done <- err }()
	must(t, mc.Close())
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read outlived the socket's close")
	}
}

// TestOwnWriterSharedBuf: writers of several subscribers take turns on
// one send scratch, encrypting in place, as one fan-out goroutine does;
// every datagram decrypts, with each profile the server may negotiate.
func TestOwnWriterSharedBuf(t *testing.T) {
	for _, tc := range []struct {
		name           string
		profile        srtp.ProtectionProfile
		keyLen, saltLn int
	}{
		{"AEAD AES-128-GCM", srtp.ProtectionProfileAeadAes128Gcm, 16, 12},
		{"AEAD AES-256-GCM", srtp.ProtectionProfileAeadAes256Gcm, 32, 12},
		{"AES-128-CM HMAC-SHA1-80", srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			must(t, err)
			defer conn.Close()
			rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			must(t, err)
			defer rx.Close()
			dp := newDirectPath(conn, &keyCatcher{})
			dp.setPair(udpPair("127.0.0.1", uint16(rx.LocalAddr().(*net.UDPAddr).Port), webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost))
			key, salt := bytes.Repeat([]byte{3}, tc.keyLen), bytes.Repeat([]byte{4}, tc.saltLn)
			var ws [3]*ownWriter
			for i := range ws {
				ctx, err := srtp.CreateContext(key, salt, tc.profile)
				must(t, err)
				out, err := rawudp.NewSender(conn, false)
				must(t, err)
				ws[i] = &ownWriter{path: dp, ctx: ctx, out: out}
			}
			dec, err := srtp.CreateContext(key, salt, tc.profile)
			must(t, err)
			var buf sendBuf
			payload := bytes.Repeat([]byte{0xab}, 1100)
			got := make([]byte, 1600)
			for seq := uint16(1); seq <= 3; seq++ {
				for i, w := range ws {
					h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 9000, SSRC: uint32(100 + i)}
					_, err := w.write(&h, payload, &buf)
					must(t, err)
					must(t, rx.SetReadDeadline(time.Now().Add(5*time.Second)))
					n, err := rx.Read(got)
					must(t, err)
					var gh rtp.Header
					pt, err := dec.DecryptRTP(nil, got[:n], &gh)
					must(t, err)
					if gh.SSRC != h.SSRC || gh.SequenceNumber != seq || !bytes.Equal(pt[len(pt)-len(payload):], payload) {
						t.Fatalf("ssrc %d seq %d: got ssrc %d seq %d", h.SSRC, seq, gh.SSRC, gh.SequenceNumber)
					}
				}
			}
		})
	}
}
