// Package ports allocates session ports from the range
// [base, base+count), OpenTera's [local_base_port, local_base_port+max_sessions).
package ports

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Pool is a port allocator. It hands ports out round-robin, so a port just
// freed is the last to be reused: a stale browser tab is less likely to
// knock on a new session's door.
type Pool struct {
	base, count int
	probe       func(port int) error // nil: every free port of the pool is taken as is
	log         *slog.Logger

	mu   sync.Mutex // guards the fields below
	used []bool
	next int
}

var _ session.Ports = (*Pool)(nil)

// New returns a pool of count ports starting at base.
func New(base, count int) *Pool {
	return &Pool{base: base, count: count, used: make([]bool, count)}
}

// NewProbed returns a pool of count ports starting at base that asks probe
// before it hands a port out: a port another process holds (a listener, or
// an outgoing connection that the kernel gave that port when the pool
// overlaps its ephemeral range) is skipped, and log says so.
func NewProbed(base, count int, probe func(port int) error, log *slog.Logger) *Pool {
	p := New(base, count)
	p.probe, p.log = probe, log
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p
}

// BindProbe is a probe that binds host:port with TCP, as a session's
// listener will, and lets go at once.
func BindProbe(host string) func(port int) error {
	return func(port int) error {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return ln.Close()
	}
}

// Acquire takes the next free port; with a probe, the next one the probe
// can bind. It fails only when no port of the pool is free.
func (p *Pool) Acquire() (int, error) {
	var skipped []int
	var lastErr error
	defer func() { // held during the search so that it moves on; free again after
		for _, s := range skipped {
			p.Release(s)
		}
	}()
	for range p.count {
		port, ok := p.take()
		if !ok {
			break
		}
		if p.probe == nil {
			return port, nil
		}
		err := p.probe(port) // unlocked: a system call, and other starts may probe meanwhile
		if err == nil {
			p.logSkipped(skipped, port, lastErr)
			return port, nil
		}
		skipped, lastErr = append(skipped, port), err
	}
	p.logSkipped(skipped, 0, lastErr)
	return 0, session.ErrNoPort
}

// logSkipped says, in one line per start, which ports other processes
// held (the first ten) and which port the start took (0: none).
func (p *Pool) logSkipped(skipped []int, took int, err error) {
	if len(skipped) == 0 {
		return
	}
	p.log.Warn("session ports held by another process: skipped", "skipped", len(skipped),
		"ports", skipped[:min(len(skipped), 10)], "took", took, "err", err)
}

// take marks the next unused port used, round-robin.
func (p *Pool) take() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.count {
		j := (p.next + i) % p.count
		if !p.used[j] {
			p.used[j] = true
			p.next = (j + 1) % p.count
			return p.base + j, true
		}
	}
	return 0, false
}

// Claim takes a given port.
func (p *Pool) Claim(port int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	j := port - p.base
	if j < 0 || j >= p.count {
		return fmt.Errorf("port %d outside [%d, %d): %w", port, p.base, p.base+p.count, session.ErrPortInUse)
	}
	if p.used[j] {
		return fmt.Errorf("port %d: %w", port, session.ErrPortInUse)
	}
	p.used[j] = true
	return nil
}

// Release gives a port back; releasing a free or foreign port does nothing.
func (p *Pool) Release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j := port - p.base; j >= 0 && j < p.count {
		p.used[j] = false
	}
}

// InUse reports how many ports are taken.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, u := range p.used {
		if u {
			n++
		}
	}
	return n
}
