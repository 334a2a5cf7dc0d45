package relay

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"go.uber.org/goleak"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// roster is the session roster as the server sees it. The real one is the
// session Manager (wired and tested in cmd/rehabrtc); here a set is enough
// to drive admission and removal.
type roster struct {
	mu  sync.Mutex
	set map[Peer]bool
}

func newRoster(ps ...Peer) *roster {
	r := &roster{set: map[Peer]bool{}}
	for _, p := range ps {
		r.set[p] = true
	}
	return r
}

func (r *roster) Admitted(p Peer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.set[p]
}

func (r *roster) admit(p Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.set[p] = true
}

func (r *roster) remove(p Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.set, p)
}

var (
	alice = Peer{Session: 7, Kind: "user", UUID: "0b8a1f2e-0000-4000-8000-000000000001"}
	bob   = Peer{Session: 7, Kind: "participant", UUID: "0b8a1f2e-0000-4000-8000-000000000002"}
)

type fixture struct {
	srv  *Server
	mint *Minter
	r    *roster
	cert *testutil.TestCert
	logs *testutil.Buffer
}

func newFixture(t testing.TB, edit func(*Config)) *fixture {
	t.Helper()
	f := &fixture{mint: NewMinter(10 * time.Minute), r: newRoster(alice, bob), logs: &testutil.Buffer{},
		cert: testutil.SelfSignedCert(t, "127.0.0.1")}
	cfg := Config{
		Listen: "127.0.0.1:0", RelayIP: netip.MustParseAddr("127.0.0.1"), PortMin: 40000, PortMax: 40999,
		Realm: "rehabrtc", Minter: f.mint, Roster: f.r, ReadLoops: 2, SocketBuffer: 1 << 20,
		TLSListen: "127.0.0.1:0", TLS: &tls.Config{Certificates: []tls.Certificate{f.cert.Cert}},
		SharedTLS: true, Sweep: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

// transport names how a client reaches the server.
type transport string

const (
	overUDP       transport = "udp"
	overTCP       transport = "tcp"
	overTLS       transport = "tls"        // the separate TURNS port
	overSharedTLS transport = "shared-tls" // the HTTPS port, shared with HTTP
)

// client is a pion TURN client with its relayed socket.
type client struct {
	c     *turn.Client
	relay net.PacketConn
}

func (f *fixture) dial(t testing.TB, tr transport, addr string, cred Credential) (*turn.Client, error) {
	t.Helper()
	var conn net.PacketConn
	switch tr {
	case overUDP:
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	case overTCP:
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	default:
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: f.cert.Pool})
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	}
	tc, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: cred.Username, Password: cred.Password, Realm: "rehabrtc",
	})
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close(); conn.Close() })
	if err := tc.Listen(); err != nil {
		t.Fatal(err)
	}
	return tc, nil
}

func (f *fixture) allocate(t testing.TB, tr transport, addr string, cred Credential) (*client, error) {
	t.Helper()
	tc, _ := f.dial(t, tr, addr, cred)
	relay, err := tc.Allocate()
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { relay.Close() })
	return &client{c: tc, relay: relay}, nil
}

func (f *fixture) mustAllocate(t testing.TB, tr transport, addr string, p Peer) *client {
	t.Helper()
	c, err := f.allocate(t, tr, addr, f.mint.Mint(p))
	if err != nil {
		t.Fatalf("Allocate over %s: %v", tr, err)
	}
	return c
}

// exchange sends from a's relay to b's relay and checks b receives it.
func exchange(t *testing.T, a, b *client, msg string) error {
	t.Helper()
	// Each side permits the other's relayed address, as ICE does.
	if err := a.c.CreatePermission(b.relay.LocalAddr()); err != nil {
		return err
	}
	if err := b.c.CreatePermission(a.relay.LocalAddr()); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := a.relay.WriteTo([]byte(msg), b.relay.LocalAddr()); err != nil {
			return err
		}
		b.relay.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, from, err := b.relay.ReadFrom(buf)
		if err == nil && string(buf[:n]) == msg && from.String() == a.relay.LocalAddr().String() {
			return nil
		}
	}
	return errors.New("nothing relayed within 3 s")
}

// addr returns where to reach the server over tr; shared TLS needs an
// HTTPS server on the shared listener, which it also checks.
func (f *fixture) addr(t testing.TB, tr transport) string {
	t.Helper()
	switch tr {
	case overUDP, overTCP:
		return f.srv.Addr().String()
	case overTLS:
		return f.srv.TLSAddr().String()
	}
	return f.sharedHTTPS(t)
}

// sharedHTTPS serves HTTPS and TURN on one listener and checks that HTTP
// still answers there.
func (f *fixture) sharedHTTPS(t testing.TB) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{f.cert.Cert}, NextProtos: []string{"http/1.1"}}
	ln, err := f.srv.ShareTLS(raw, conf)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page") })}
	var wg sync.WaitGroup
	wg.Go(func() { hs.Serve(ln) })
	t.Cleanup(func() { hs.Close(); wg.Wait() })
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.cert.Pool}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("https://" + raw.Addr().String() + "/")
	if err != nil {
		t.Fatalf("HTTPS on the shared port: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "page" {
		t.Fatalf("HTTPS on the shared port = %q", body)
	}
	return raw.Addr().String()
}

func TestRelayOverEveryTransport(t *testing.T) {
	f := newFixture(t, nil)
	for _, tr := range []transport{overUDP, overTCP, overTLS, overSharedTLS} {
		t.Run(string(tr), func(t *testing.T) {
			a := f.mustAllocate(t, tr, f.addr(t, tr), alice)
			b := f.mustAllocate(t, overUDP, f.addr(t, overUDP), bob)
			before := f.srv.Counters().BytesToPeers.Load()
			if err := exchange(t, a, b, "hello over "+string(tr)); err != nil {
				t.Fatal(err)
			}
			if err := exchange(t, b, a, "and back"); err != nil {
				t.Fatal(err)
			}
			if got := f.srv.Counters().BytesToPeers.Load(); got <= before {
				t.Errorf("BytesToPeers did not grow (%d)", got)
			}
		})
	}
}

func TestCredentialsRefused(t *testing.T) {
	f := newFixture(t, nil)
	stranger := Peer{Session: 7, Kind: "user", UUID: "0b8a1f2e-0000-4000-8000-0000000000ff"}
	other := NewMinter(10 * time.Minute) // another process's secret
	good := f.mint.Mint(alice)
	expired := f.mint.Mint(alice)
	expired.Username = "1000000000:" + alice.userID()
	expired.Password = f.mint.password(expired.Username)
	for name, cred := range map[string]Credential{
		"wrong password":     {Username: good.Username, Password: good.Password[:10] + "xx"},
		"other secret":       other.Mint(alice),
		"not invited":        f.mint.Mint(stranger),
		"expired":            expired,
		"malformed username": {Username: "alice", Password: "x"},
		"other session":      f.mint.Mint(Peer{Session: 8, Kind: alice.Kind, UUID: alice.UUID}),
		"tampered expiry":    {Username: "9999999999:" + alice.userID(), Password: good.Password},
		"empty credential":   {},
	} {
		t.Run(name, func(t *testing.T) {
			before := f.srv.Counters().AuthFailures.Load()
			_, err := f.allocate(t, overUDP, f.addr(t, overUDP), cred)
			if err == nil {
				t.Fatal("allocation accepted")
			}
			if cred.Username != "" && f.srv.Counters().AuthFailures.Load() == before {
				t.Errorf("AuthFailures not counted (%v)", err)
			}
		})
	}
	if f.srv.Counters().Allocations.Load() != 0 {
		t.Errorf("%d allocations live", f.srv.Counters().Allocations.Load())
	}
}

// TestRemovedPeerCut: once the roster drops a peer, its credentials are
// refused and its allocation is closed within a second, so relayed media
// stops.
func TestRemovedPeerCut(t *testing.T) {
	f := newFixture(t, nil)
	for _, tr := range []transport{overUDP, overTCP} {
		t.Run(string(tr), func(t *testing.T) {
			f.r.admit(bob)
			a := f.mustAllocate(t, overUDP, f.addr(t, overUDP), alice)
			b := f.mustAllocate(t, tr, f.addr(t, tr), bob)
			if err := exchange(t, a, b, "before"); err != nil {
				t.Fatal(err)
			}
			live := f.srv.Counters().Allocations.Load()
			f.r.remove(bob)
			removed := time.Now()
			for f.srv.Counters().Allocations.Load() != live-1 {
				if time.Since(removed) > time.Second {
					t.Fatalf("allocation still live %v after removal", time.Since(removed))
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := exchange(t, a, b, "after"); err == nil {
				t.Fatal("media still relayed after removal")
			}
			if _, err := f.allocate(t, overUDP, f.addr(t, overUDP), f.mint.Mint(bob)); err == nil {
				t.Fatal("removed peer allocated again")
			}
		})
	}
}

// TestNoOpenRelay: the relay refuses to reach loopback, private and other
// internal addresses (403), but lets two relayed peers meet on its own
// address.
func TestNoOpenRelay(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.RelayIP, c.RelayBind = netip.MustParseAddr("127.0.0.2"), "127.0.0.2"
		c.Allow = []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}
	})
	a := f.mustAllocate(t, overUDP, f.addr(t, overUDP), alice)
	for _, peer := range []string{"127.0.0.1:4070", "10.0.0.1:3478", "192.168.1.1:80", "172.16.0.1:53", "169.254.169.254:80",
		"100.64.0.1:1", "224.0.0.1:5004", "0.0.0.0:9", "255.255.255.255:9"} {
		t.Run(peer, func(t *testing.T) {
			before := f.srv.Counters().PermissionsDenied.Load()
			err := a.c.CreatePermission(net.UDPAddrFromAddrPort(netip.MustParseAddrPort(peer)))
			if err == nil || !strings.Contains(err.Error(), "403") {
				t.Fatalf("CreatePermission(%s) = %v, want 403", peer, err)
			}
			if f.srv.Counters().PermissionsDenied.Load() == before {
				t.Error("PermissionsDenied not counted")
			}
		})
	}
	for _, peer := range []string{"203.0.113.9:5000", "10.99.1.2:5000", "127.0.0.2:40001"} {
		if err := a.c.CreatePermission(net.UDPAddrFromAddrPort(netip.MustParseAddrPort(peer))); err != nil {
			t.Errorf("CreatePermission(%s) = %v, want allowed", peer, err)
		}
	}
	// The relay's own address reaches live relay sockets only: a datagram to
	// another socket of this host is dropped, whether its port is ephemeral
	// or inside the relay range (ranges often overlap the ephemeral ports).
	for _, port := range []int{0, inRangeFreePort(t, f)} {
		target, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.2", strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		a.c.CreatePermission(target.LocalAddr())
		a.relay.WriteTo([]byte("probe"), target.LocalAddr())
		target.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, _, err := target.ReadFrom(make([]byte, 100)); err == nil {
			t.Errorf("service port %v of the relay host got %d bytes through the relay", target.LocalAddr(), n)
		}
		target.Close()
	}
}

// inRangeFreePort is a port of f's relay range that no allocation holds.
func inRangeFreePort(t *testing.T, f *fixture) int {
	for p := f.srv.cfg.PortMax; p >= f.srv.cfg.PortMin; p-- {
		if _, live := f.srv.ports.Load(p); live {
			continue
		}
		if pc, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.2", strconv.Itoa(p))); err == nil {
			pc.Close()
			return p
		}
	}
	t.Fatal("no free port in the relay range")
	return 0
}

func TestQuota(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxPerPeer, c.MaxPerSession = 2, 3 })
	f.mustAllocate(t, overUDP, f.addr(t, overUDP), alice)
	f.mustAllocate(t, overUDP, f.addr(t, overUDP), alice)
	if _, err := f.allocate(t, overUDP, f.addr(t, overUDP), f.mint.Mint(alice)); err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("third allocation of one peer = %v, want 486", err)
	}
	f.mustAllocate(t, overUDP, f.addr(t, overUDP), bob)
	if _, err := f.allocate(t, overUDP, f.addr(t, overUDP), f.mint.Mint(bob)); err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("fourth allocation of the session = %v, want 486", err)
	}
	if got := f.srv.Counters().QuotaRefused.Load(); got != 2 {
		t.Errorf("QuotaRefused = %d, want 2", got)
	}
}

func TestLifetimeCap(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxLifetime = 300 * time.Millisecond })
	f.mustAllocate(t, overUDP, f.addr(t, overUDP), alice)
	deadline := time.Now().Add(2 * time.Second)
	for f.srv.Counters().Allocations.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("allocation outlived MaxLifetime")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNothingSecretLogged: the server logs neither passwords nor
// usernames, even for refused requests.
func TestNothingSecretLogged(t *testing.T) {
	f := newFixture(t, nil)
	cred := f.mint.Mint(alice)
	a := f.mustAllocate(t, overUDP, f.addr(t, overUDP), alice)
	b := f.mustAllocate(t, overTCP, f.addr(t, overTCP), bob)
	exchange(t, a, b, "x")
	f.allocate(t, overUDP, f.addr(t, overUDP), Credential{Username: cred.Username, Password: "wrong"})
	logs := f.logs.String()
	for _, s := range []string{cred.Password, alice.UUID, bob.UUID, cred.Username} {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain %q:\n%s", s, logs)
		}
	}
}

func TestIsSTUN(t *testing.T) {
	for name, tt := range map[string]struct {
		b    []byte
		want bool
	}{
		"binding request": {[]byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42}, true},
		"allocate":        {[]byte{0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42}, true},
		"GET":             {[]byte("GET / HT"), false},
		"no cookie":       {[]byte{0x00, 0x01, 0x00, 0x00, 0, 0, 0, 0}, false},
		"channel data":    {[]byte{0x40, 0x00, 0x00, 0x04, 0x21, 0x12, 0xA4, 0x42}, false},
		"short":           {[]byte{0x00, 0x01}, false},
	} {
		if got := isSTUN(tt.b); got != tt.want {
			t.Errorf("%s: isSTUN = %v", name, got)
		}
	}
}

func TestUsernames(t *testing.T) {
	m := NewMinter(time.Minute)
	c := m.Mint(alice)
	exp, p, ok := parseUsername(c.Username)
	if !ok || p != alice || !exp.Equal(c.Expires) {
		t.Fatalf("parseUsername(%q) = %v %v %v", c.Username, exp, p, ok)
	}
	office := Peer{Session: -3, Kind: "socket", UUID: "Ab-_9"} // a consultation member
	if _, p, ok := parseUsername(m.Mint(office).Username); !ok || p != office {
		t.Errorf("consultation peer: %v %v", p, ok)
	}
	for _, bad := range []string{"", ":", "1:", "x:7.user.u", "1:7.user", "1:0.user.u", "1:-0.user.u", "1:7..u", "1:7.user.", "1:7.user.a.b",
		"1:7.user.a:b", strings.Repeat("1", 300) + ":7.user.u"} {
		if _, _, ok := parseUsername(bad); ok {
			t.Errorf("parseUsername(%q) accepted", bad)
		}
	}
	if !bytes.Equal([]byte(m.password(c.Username)), []byte(c.Password)) {
		t.Error("password not reproducible")
	}
}

// TestSilentStreamClosed: a TCP connection that never speaks is closed
// after FirstRead instead of being held forever.
func TestSilentStreamClosed(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.FirstRead = 200 * time.Millisecond })
	c, err := net.Dial("tcp", f.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent connection still open after %v (%v)", time.Since(start), err)
	}
	// A client that speaks keeps its connection past FirstRead.
	a := f.mustAllocate(t, overTCP, f.addr(t, overTCP), alice)
	b := f.mustAllocate(t, overUDP, f.addr(t, overUDP), bob)
	time.Sleep(300 * time.Millisecond)
	if err := exchange(t, a, b, "still here"); err != nil {
		t.Fatal(err)
	}
}

// TestLocalPathKeepsPermissions: between two allocations of this server
// packets skip the kernel (local.go), yet the receiver's permissions still
// decide: without one for the sender's relayed address nothing arrives.
func TestLocalPathKeepsPermissions(t *testing.T) {
	f := newFixture(t, nil)
	a := f.mustAllocate(t, overUDP, f.addr(t, overUDP), alice)
	b := f.mustAllocate(t, overUDP, f.addr(t, overUDP), bob)
	if err := a.c.CreatePermission(b.relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for range 3 {
		a.relay.WriteTo([]byte("unasked"), b.relay.LocalAddr())
		b.relay.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, _, err := b.relay.ReadFrom(buf); err == nil {
			t.Fatalf("b got %q without a permission for a", buf[:n])
		}
	}
	if err := exchange(t, a, b, "asked"); err != nil { // exchange permits both ways
		t.Fatal(err)
	}
	before := f.srv.Counters().BytesFromPeers.Load()
	if err := exchange(t, b, a, "back"); err != nil {
		t.Fatal(err)
	}
	if f.srv.Counters().BytesFromPeers.Load() == before {
		t.Error("bytes from peers not counted on the in-memory path")
	}
}
