//go:build linux

package rawudp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestReadSend: raw reads and writes carry datagrams and
// addresses like net.UDPConn's, on IPv4, IPv6 and dual-stack sockets, and a
// read blocked on a socket ends when it is closed.
func TestReadSend(t *testing.T) {
	for _, tc := range []struct{ name, sock, peer string }{
		{"ipv4", "127.0.0.1:0", "127.0.0.1:0"},
		{"ipv6", "[::1]:0", "[::1]:0"},
		{"ipv4 on dual stack", "[::]:0", "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock, peer := socketPair(t, tc.name, tc.sock, tc.peer)
			if sock == nil {
				return
			}
			r, err := NewReader(sock)
			if err != nil {
				t.Fatal(err)
			}
			w, err := NewSenders(sock)
			if err != nil {
				t.Fatal(err)
			}
			to := netip.AddrPortFrom(peer.LocalAddr().(*net.UDPAddr).AddrPort().Addr(), sock.LocalAddr().(*net.UDPAddr).AddrPort().Port())
			if _, err := peer.WriteToUDPAddrPort([]byte("ping"), to); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 64)
			n, from, err := r.Read(b)
			if err != nil || string(b[:n]) != "ping" {
				t.Fatalf("read %q, %v", b[:n], err)
			}
			if want := peer.LocalAddr().(*net.UDPAddr).AddrPort(); from.Addr().Unmap() != want.Addr().Unmap() || from.Port() != want.Port() {
				t.Fatalf("from %v, want %v", from, want)
			}
			if _, err := w.Send([]byte("pong"), from); err != nil {
				t.Fatal(err)
			}
			peer.SetReadDeadline(time.Now().Add(2 * time.Second))
			if n, _, err := peer.ReadFromUDPAddrPort(b); err != nil || string(b[:n]) != "pong" {
				t.Fatalf("peer read %q, %v", b[:n], err)
			}
			var wg sync.WaitGroup
			var rerr error
			wg.Go(func() { _, _, rerr = r.Read(b) })
			time.Sleep(20 * time.Millisecond) // most often blocked by now; either way the read must end
			sock.Close()
			wg.Wait()
			if !errors.Is(rerr, net.ErrClosed) {
				t.Fatalf("read on a closed socket: %v", rerr)
			}
			if _, err := w.Send([]byte("x"), from); err == nil {
				t.Fatal("write on a closed socket succeeded")
			}
		})
	}
}

func TestRawWriteFamilies(t *testing.T) {
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	w, err := NewSenders(sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Send([]byte("x"), netip.MustParseAddrPort("[2001:db8::1]:9")); !errors.Is(err, ErrUnsupportedAddr) {
		t.Fatalf("IPv6 on an IPv4 socket: %v", err)
	}
	if _, err := w.Send([]byte("x"), netip.MustParseAddrPort("[::ffff:127.0.0.1]:9")); err != nil {
		t.Fatalf("mapped IPv4 on an IPv4 socket: %v", err)
	}
}

// TestDontFragment: the option is set for each family the socket sends
// (both on a dual-stack one), and datagrams still go through.
func TestDontFragment(t *testing.T) {
	for _, tc := range []struct {
		name, sock, peer string
		v6               bool
	}{
		{"ipv4", "127.0.0.1:0", "127.0.0.1:0", false},
		{"ipv6", "[::1]:0", "[::1]:0", true},
		{"ipv4 on dual stack", "[::]:0", "127.0.0.1:0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock, peer := socketPair(t, tc.name, tc.sock, tc.peer)
			if sock == nil {
				return
			}
			if err := DontFragment(sock); err != nil {
				t.Fatal(err)
			}
			opt := func(level, name int) int {
				rc, err := sock.SyscallConn()
				if err != nil {
					t.Fatal(err)
				}
				var v int
				var gerr error
				if err := rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, name) }); err != nil || gerr != nil {
					t.Fatal(err, gerr)
				}
				return v
			}
			if v := opt(syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER); v != syscall.IP_PMTUDISC_DO {
				t.Errorf("IP_MTU_DISCOVER %d, want %d", v, syscall.IP_PMTUDISC_DO)
			}
			if tc.v6 {
				if v := opt(syscall.IPPROTO_IPV6, syscall.IPV6_MTU_DISCOVER); v != syscall.IPV6_PMTUDISC_DO {
					t.Errorf("IPV6_MTU_DISCOVER %d, want %d", v, syscall.IPV6_PMTUDISC_DO)
				}
			}
			w, err := NewSenders(sock)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Send(make([]byte, 1200), peer.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 1500)
			peer.SetReadDeadline(time.Now().Add(2 * time.Second))
			if n, _, err := peer.ReadFromUDPAddrPort(b); err != nil || n != 1200 {
				t.Fatalf("peer read %d bytes, %v", n, err)
			}
		})
	}
}

// socketPair opens the socket under test on sock and a peer on peer, both
// closed with the test; nil if the family is not available here (IPv6 may
// be off in a container; IPv4, the first case, may not).
func socketPair(t *testing.T, name, sock, peer string) (*net.UDPConn, *net.UDPConn) {
	t.Helper()
	s, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(sock)))
	if err != nil {
		if name != "ipv4" {
			t.Logf("no %s here: %v", name, err)
			return nil, nil
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(peer)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return s, p
}
