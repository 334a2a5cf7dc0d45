package relay

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// rawPeer is a UDP client whose allocation, permissions and channels pion's
// client makes; once taken, the test writes and reads its socket directly,
// as a browser's ChannelData.
type rawPeer struct {
	l     *lent
	tc    *turn.Client
	relay net.PacketConn
}

func newRawPeer(t *testing.T, f *fixture, p Peer) *rawPeer {
	l, tc, relay := channelClient(t, f, p)
	return &rawPeer{l: l, tc: tc, relay: relay}
}

// mirrored is the channel number from's allocation has bound to to's
// relayed address, as the fast path sees it.
func mirrored(f *fixture, from, to net.Addr) (uint16, bool) {
	v, ok := f.srv.ports.Load(from.(*net.UDPAddr).Port)
	if !ok {
		return 0, false
	}
	tab := v.(*relayConn).fast.chans.Load()
	if tab == nil {
		return 0, false
	}
	num, ok := tab.byPeer[unmapped(to.(*net.UDPAddr).AddrPort())]
	return num, ok
}

// bind has pion's client on from bind a channel to to's relayed address
// (it does on its first writes there) and waits for the server's mirror.
func bind(t *testing.T, f *fixture, from, to *rawPeer) uint16 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if num, ok := mirrored(f, from.relay.LocalAddr(), to.relay.LocalAddr()); ok {
			return num
		}
		if time.Now().After(deadline) {
			t.Fatal("no channel bound within 5 s")
		}
		from.relay.WriteTo([]byte("binding"), to.relay.LocalAddr())
		time.Sleep(20 * time.Millisecond)
	}
}

// take stops pion's reader on p's socket: the test owns it from now on.
func (p *rawPeer) take() {
	p.l.taken.Store(true)
	p.l.WriteTo([]byte{0}, p.l.LocalAddr()) // wakes pion's reader, which ends; else the test reads it and skips it
}

func channelData(num uint16, payload []byte) []byte {
	b := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint16(b, num)
	binary.BigEndian.PutUint16(b[2:], uint16(len(payload)))
	copy(b[4:], payload)
	return b
}

// received reads p's socket until a packet carries payload or wait passes,
// and returns that packet.
func (p *rawPeer) received(payload []byte, wait time.Duration) []byte {
	buf := make([]byte, 2048)
	p.l.SetReadDeadline(time.Now().Add(wait))
	defer p.l.SetReadDeadline(time.Time{})
	for {
		n, _, err := p.l.UDPConn.ReadFrom(buf)
		if err != nil {
			return nil
		}
		if bytes.Contains(buf[:n], payload) {
			return append([]byte(nil), buf[:n]...)
		}
	}
}

// TestFastPath: ChannelData between two allocations of this server is
// relayed by the TURN socket itself, and still only as pion would: as
// ChannelData on B's channel when B bound one to A's relayed address, as a
// Data indication when B only permitted A, and not at all otherwise.
func TestFastPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    string // what B did for A: "channel", "permission", "nothing"
	}{
		{"receiver bound a channel", "channel"},
		{"receiver only permitted", "permission"},
		{"receiver permitted nothing", "nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.ReadLoops = 1 })
			a, b := newRawPeer(t, f, alice), newRawPeer(t, f, bob)
			numA := bind(t, f, a, b)
			var numB uint16
			switch tc.b {
			case "channel":
				numB = bind(t, f, b, a)
			case "permission":
				if err := b.tc.CreatePermission(a.relay.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			a.take()
			b.take()
			fast0, to0, from0 := f.srv.fastRelayed.Load(), f.srv.Counters().BytesToPeers.Load(), f.srv.Counters().BytesFromPeers.Load()
			payload := []byte("fast path payload, 1 of a kind")
			var got []byte
			for i := 0; i < 5 && got == nil; i++ { // UDP on loopback: a loss is unlikely, not impossible
				a.l.WriteToUDP(channelData(numA, payload), f.srv.Addr().(*net.UDPAddr))
				got = b.received(payload, 300*time.Millisecond)
			}
			if f.srv.fastRelayed.Load() == fast0 {
				t.Error("the fast path relayed nothing")
			}
			if f.srv.Counters().BytesToPeers.Load() == to0 {
				t.Error("BytesToPeers not counted")
			}
			switch tc.b {
			case "channel":
				if want := channelData(numB, payload); !bytes.Equal(got[:min(len(got), len(want))], want) || len(got) != (len(want)+3)/4*4 {
					t.Fatalf("B got % x, want ChannelData % x padded", got, want)
				}
				if f.srv.Counters().BytesFromPeers.Load() == from0 {
					t.Error("BytesFromPeers not counted")
				}
			case "permission":
				m := &stun.Message{Raw: got}
				if got == nil || m.Decode() != nil || m.Type != stun.NewType(stun.MethodData, stun.ClassIndication) {
					t.Fatalf("B got % x, want a Data indication", got)
				}
				if v, err := m.Get(stun.AttrData); err != nil || !bytes.Equal(v, payload) {
					t.Fatalf("Data indication carries %q (%v)", v, err)
				}
			case "nothing":
				if got != nil {
					t.Fatalf("B got % x without a permission for A", got)
				}
			}
		})
	}
}

// boundPair is two raw peers with channels bound both ways, taken.
func boundPair(t *testing.T, f *fixture) (a, b *rawPeer, numA uint16) {
	a, b = newRawPeer(t, f, alice), newRawPeer(t, f, bob)
	numA = bind(t, f, a, b)
	bind(t, f, b, a)
	a.take()
	b.take()
	return a, b, numA
}

// relays sends payload from a on channel num and reports whether b got it.
func relays(f *fixture, a, b *rawPeer, num uint16, payload string) bool {
	for range 3 {
		a.l.WriteToUDP(channelData(num, []byte(payload)), f.srv.Addr().(*net.UDPAddr))
		if b.received([]byte(payload), 200*time.Millisecond) != nil {
			return true
		}
	}
	return false
}

// TestFastPathRevoked: once the roster drops either peer, its allocation
// closes within a second and the fast path relays nothing more, either way.
func TestFastPathRevoked(t *testing.T) {
	for _, removed := range []Peer{alice, bob} {
		t.Run(removed.Kind, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.ReadLoops = 1 })
			a, b, numA := boundPair(t, f)
			if !relays(f, a, b, numA, "before") {
				t.Fatal("nothing relayed before the removal")
			}
			f.r.remove(removed)
			start := time.Now()
			for f.srv.Counters().Allocations.Load() != 1 {
				if time.Since(start) > time.Second {
					t.Fatalf("allocation still live %v after removal", time.Since(start))
				}
				time.Sleep(10 * time.Millisecond)
			}
			fast := f.srv.fastRelayed.Load()
			if relays(f, a, b, numA, "after") {
				t.Fatal("media still relayed after removal")
			}
			if removed == alice && f.srv.fastRelayed.Load() != fast {
				t.Error("the fast path relayed from a closed allocation")
			}
		})
	}
}

// TestFastPathBadInput: what is not ChannelData on a bound channel of the
// sender's own live allocation goes to pion, which drops it; the server
// keeps relaying.
func TestFastPathBadInput(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ReadLoops = 1 })
	a, b, numA := boundPair(t, f)
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	server := f.srv.Addr().(*net.UDPAddr)
	long := channelData(numA, []byte("bad: length"))
	binary.BigEndian.PutUint16(long[2:], 200) // longer than the datagram
	for name, send := range map[string]func([]byte){
		"unbound channel":  func(p []byte) { a.l.WriteToUDP(channelData(numA+1, p), server) },
		"channel 0x8000":   func(p []byte) { a.l.WriteToUDP(channelData(0x8000, p), server) },
		"length too long":  func([]byte) { a.l.WriteToUDP(long, server) },
		"header only":      func([]byte) { a.l.WriteToUDP(channelData(numA, nil)[:3], server) },
		"other client":     func(p []byte) { stranger.WriteToUDP(channelData(numA, p), server) },
		"too big for pion": func(p []byte) { a.l.WriteToUDP(channelData(numA, append(p, make([]byte, 1700)...)), server) },
	} {
		t.Run(name, func(t *testing.T) {
			fast := f.srv.fastRelayed.Load()
			payload := []byte("bad: " + name)
			send(payload)
			if got := b.received([]byte("bad: "), 300*time.Millisecond); got != nil {
				t.Fatalf("B got % x", got)
			}
			if f.srv.fastRelayed.Load() != fast {
				t.Error("the fast path took it")
			}
		})
	}
	if !relays(f, a, b, numA, "still relaying") {
		t.Fatal("nothing relayed after the bad input")
	}
}

// TestFastPathToTCPClient: a receiver over TCP gets ChannelData from pion's
// reader (the fast path writes only to UDP clients).
func TestFastPathToTCPClient(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ReadLoops = 1 })
	a := newRawPeer(t, f, alice)
	b := f.mustAllocate(t, overTCP, f.addr(t, overTCP), bob)
	bp := &rawPeer{relay: b.relay}
	numA := bind(t, f, a, bp)
	a.take()
	buf := make([]byte, 1500)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b.relay.WriteTo([]byte("binding"), a.relay.LocalAddr()) // B permits A and binds a channel
		a.l.WriteToUDP(channelData(numA, []byte("to tcp")), f.srv.Addr().(*net.UDPAddr))
		b.relay.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, from, err := b.relay.ReadFrom(buf); err == nil && string(buf[:n]) == "to tcp" {
			if from.String() != a.relay.LocalAddr().String() {
				t.Fatalf("from %v, want A's relayed address %v", from, a.relay.LocalAddr())
			}
			return
		}
	}
	t.Fatal("nothing relayed to the TCP client within 5 s")
}

// TestFastPathFromPeer: what a relay socket receives from a peer that is
// not relayed here (a browser with a direct address) reaches the client as
// ChannelData when the client bound a channel to that peer, and not at all
// from an address the client did not permit.
func TestFastPathFromPeer(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.ReadLoops = 1
		c.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} // the "outside" peers of this test are on loopback
	})
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 4)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	b := newRawPeer(t, f, bob)
	num := bind(t, f, b, &rawPeer{relay: fixedAddr{peer.LocalAddr()}})
	b.take()
	relayed := b.relay.LocalAddr().(*net.UDPAddr)
	from0, fast0 := f.srv.Counters().BytesFromPeers.Load(), f.srv.fastRelayed.Load()
	var got []byte
	for i := 0; i < 3 && got == nil; i++ {
		peer.WriteToUDP([]byte("from a direct peer"), relayed)
		got = b.received([]byte("from a direct peer"), 300*time.Millisecond)
	}
	if want := channelData(num, []byte("from a direct peer")); !bytes.Equal(got[:min(len(got), len(want))], want) {
		t.Fatalf("B got % x, want ChannelData % x", got, want)
	}
	if f.srv.Counters().BytesFromPeers.Load() == from0 {
		t.Error("BytesFromPeers not counted")
	}
	if f.srv.fastRelayed.Load() == fast0 {
		t.Error("relayed by pion, not by the relay socket's fast path")
	}
	stranger.WriteToUDP([]byte("from a stranger"), relayed)
	if got := b.received([]byte("from a stranger"), 300*time.Millisecond); got != nil {
		t.Fatalf("B got % x from an address it did not permit", got)
	}
}

// fixedAddr is a net.PacketConn that only has an address: a peer for bind.
type fixedAddr struct{ a net.Addr }

func (f fixedAddr) LocalAddr() net.Addr                  { return f.a }
func (fixedAddr) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, net.ErrClosed }
func (fixedAddr) WriteTo([]byte, net.Addr) (int, error)  { return 0, net.ErrClosed }
func (fixedAddr) Close() error                           { return nil }
func (fixedAddr) SetDeadline(time.Time) error            { return nil }
func (fixedAddr) SetReadDeadline(time.Time) error        { return nil }
func (fixedAddr) SetWriteDeadline(time.Time) error       { return nil }
