// Package ports allocates session ports from the range
// [base, base+count), OpenTera's [local_base_port, local_base_port+max_sessions).
package ports

import (
	"fmt"
	"sync"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Pool is a port allocator. It hands ports out round-robin, so a port just
// freed is the last to be reused: a stale browser tab is less likely to
// knock on a new session's door.
type Pool struct {
	base, count int

	mu   sync.Mutex // guards the fields below
	used []bool
	next int
}

var _ session.Ports = (*Pool)(nil)

// New returns a pool of count ports starting at base.
func New(base, count int) *Pool {
	return &Pool{base: base, count: count, used: make([]bool, count)}
}

// Acquire takes the next free port.
func (p *Pool) Acquire() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.count {
		j := (p.next + i) % p.count
		if !p.used[j] {
			p.used[j] = true
			p.next = (j + 1) % p.count
			return p.base + j, nil
		}
	}
	return 0, session.ErrNoPort
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
