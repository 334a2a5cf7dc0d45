// Package rawudp reads and writes UDP datagrams on a net.UDPConn with raw
// system calls where the platform allows (Linux), and through the
// net.UDPConn elsewhere.
//
// Why: net.UDPConn's system calls go through the scheduler's syscall state
// (entersyscall). In a process that is idle between packets, as a media
// relay or an SFU is at real rates, the first such call after each wake-up
// wakes sysmon, which then polls every 20 µs until the process is idle
// again: 14-22 % of the TURN relay's and the SFU's CPU in perf.
// recvfrom and sendto on a non-blocking socket never block, so they may be
// raw system calls, which skip that state. Waiting for the socket stays the
// netpoller's (syscall.RawConn), which also keeps the descriptor from being
// closed and reused under a call, and honours deadlines.
package rawudp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
)

// ErrUnsupportedAddr: an address of a family the socket cannot carry.
var ErrUnsupportedAddr = errors.New("rawudp: address of a family the socket cannot carry")

// Senders shares a socket's writes among many goroutines: each write takes
// a pooled Sender, so nothing is allocated per datagram.
type Senders struct {
	pool sync.Pool // *Sender
}

// NewSenders prepares pooled writes on uc.
func NewSenders(uc *net.UDPConn) (*Senders, error) {
	v6, err := IsV6(uc)
	if err != nil {
		return nil, err
	}
	if _, err := NewSender(uc, v6); err != nil {
		return nil, err
	}
	p := &Senders{}
	p.pool.New = func() any {
		s, _ := NewSender(uc, v6) // worked above: it cannot fail now
		return s
	}
	return p, nil
}

// Send writes b to to, from any goroutine.
func (p *Senders) Send(b []byte, to netip.AddrPort) (int, error) {
	s := p.pool.Get().(*Sender)
	defer p.pool.Put(s)
	return s.Send(b, to)
}
