package relay

import (
	"encoding/binary"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

// BenchmarkRelay measures one packet's trip A → server → A's relay → B's
// relay → server → B, the path between two relayed browsers (pion clients;
// the server's share is in the CPU profile: go test -bench Relay -cpuprofile).
func BenchmarkRelay(b *testing.B) {
	f := newFixture(b, func(c *Config) { c.ReadLoops = 1 })
	a := f.mustAllocate(b, overUDP, f.addr(b, overUDP), alice)
	c := f.mustAllocate(b, overUDP, f.addr(b, overUDP), bob)
	if err := a.c.CreatePermission(c.relay.LocalAddr()); err != nil {
		b.Fatal(err)
	}
	if err := c.c.CreatePermission(a.relay.LocalAddr()); err != nil {
		b.Fatal(err)
	}
	pkt := make([]byte, 1200)
	buf := make([]byte, 1500)
	b.SetBytes(int64(len(pkt)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.relay.WriteTo(pkt, c.relay.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.relay.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// lent lends a UDP socket to a pion TURN client for the control exchanges
// (allocate, permission, channel bind), then takes it back so the
// benchmark writes and reads ChannelData on it directly: the client side
// then allocates nothing, and allocs/op is the server's per packet.
type lent struct {
	*net.UDPConn
	taken atomic.Bool
}

func (l *lent) ReadFrom(b []byte) (int, net.Addr, error) {
	if l.taken.Load() {
		return 0, nil, net.ErrClosed // pion's reader ends
	}
	return l.UDPConn.ReadFrom(b)
}

// channelClient allocates for p on a lent socket.
func channelClient(b testing.TB, f *fixture, p Peer) (*lent, *turn.Client, net.PacketConn) {
	addr := f.addr(b, overUDP)
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	l := &lent{UDPConn: uc}
	cred := f.mint.Mint(p)
	tc, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: l,
		Username: cred.Username, Password: cred.Password, Realm: "rehabrtc"})
	if err != nil {
		b.Fatal(err)
	}
	if err := tc.Listen(); err != nil {
		b.Fatal(err)
	}
	relay, err := tc.Allocate()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { relay.Close(); tc.Close(); uc.Close() })
	return l, tc, relay
}

// BenchmarkRelayChannelData measures the server alone on the path media
// takes between two relayed browsers: ChannelData from A → server → A's
// relay socket → B's relay socket → server → ChannelData to B, one packet
// at a time. allocs/op and B/op are the server's per relayed packet (the
// clients write and read their sockets directly).
func BenchmarkRelayChannelData(b *testing.B) {
	f := newFixture(b, func(c *Config) { c.ReadLoops = 1 })
	la, _, ra := channelClient(b, f, alice)
	lb, _, rb := channelClient(b, f, bob)
	// The first writes create the permissions and bind channel 0x4000 both ways.
	buf := make([]byte, 1500)
	for got := 0; got < 2; {
		ra.WriteTo([]byte("x"), rb.LocalAddr())
		rb.WriteTo([]byte("x"), ra.LocalAddr())
		got = 0
		for _, r := range []net.PacketConn{ra, rb} {
			r.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, _, err := r.ReadFrom(buf); err == nil {
				got++
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // the channel bindings complete
	la.taken.Store(true)
	lb.taken.Store(true)
	la.WriteTo([]byte{0}, la.LocalAddr()) // wakes pion's readers, which then end
	lb.WriteTo([]byte{0}, lb.LocalAddr())
	time.Sleep(50 * time.Millisecond)
	server := f.srv.Addr().(*net.UDPAddr)
	pkt := make([]byte, 4+1200)
	binary.BigEndian.PutUint16(pkt[0:], 0x4000)
	binary.BigEndian.PutUint16(pkt[2:], 1200)
	lb.SetReadDeadline(time.Now().Add(time.Minute))
	b.SetBytes(1200)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	defer func() { // CPU time, unlike ns/op, hardly depends on the machine's other load
		b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}()
	for b.Loop() {
		if _, err := la.WriteToUDP(pkt, server); err != nil {
			b.Fatal(err)
		}
		for {
			n, _, err := lb.ReadFromUDPAddrPort(buf)
			if err != nil {
				b.Fatal(err)
			}
			if n == len(pkt) && buf[0]&0xC0 == 0x40 {
				break
			}
		}
	}
}

// processCPU is the user and system time of this process so far: the
// server's, plus the clients' two system calls per packet.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
