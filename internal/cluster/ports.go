package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Ports is the cluster-wide pool of session ports [base, base+count): a
// port is a routing key in the sessions' links, so no two nodes may hand
// out the same one. Each port taken is marked in Redis with the node
// incarnation that holds it; a port held by an incarnation whose heartbeat
// has expired is free again. Every node must use the same range.
type Ports struct {
	n           *Node
	base, count int
	timeout     time.Duration
	log         *slog.Logger
	probe       func(port int) error // nil: a port free in Redis is taken as is

	mu      sync.Mutex // guards pending
	pending map[int]bool
}

var _ session.Ports = (*Ports)(nil)

// opTimeout bounds one call of the pool: session.Ports has no context.
const opTimeout = 2 * time.Second

// Ports returns the node's view of the port pool [base, base+count).
func (n *Node) Ports(base, count int) *Ports {
	return &Ports{n: n, base: base, count: count, timeout: opTimeout, log: n.log, pending: map[int]bool{}}
}

// WithProbe makes Acquire ask probe (e.g. ports.BindProbe) before it
// hands a port out: a port another process of this host holds is skipped
// (held in Redis during the search, so it moves on, and released after).
func (p *Ports) WithProbe(probe func(port int) error) *Ports {
	p.probe = probe
	return p
}

// Acquire takes the next free port of the cluster, round-robin; with a
// probe, the next one the probe accepts.
func (p *Ports) Acquire() (int, error) {
	ctx, cancel := p.ctx()
	defer cancel()
	if err := p.usable(); err != nil {
		return 0, err
	}
	p.retryReleases(ctx)
	var skipped []int
	var lastErr error
	defer func() {
		for _, port := range skipped {
			p.Release(port)
		}
	}()
	for range p.count {
		port, err := p.take(ctx)
		if err != nil || p.probe == nil {
			return port, err
		}
		if lastErr = p.probe(port); lastErr == nil {
			p.logSkipped(skipped, port, nil)
			return port, nil
		}
		skipped = append(skipped, port)
	}
	p.logSkipped(skipped, 0, lastErr)
	return 0, session.ErrNoPort
}

func (p *Ports) take(ctx context.Context) (int, error) {
	k := p.n.keys
	port, err := acquirePortScript.Run(ctx, p.n.rdb, []string{k.ports(), k.portNext(), k.nodes()},
		p.base, p.count, p.n.info.Member()).Int()
	if err != nil {
		return 0, fmt.Errorf("acquire port: %w", err)
	}
	if port == 0 {
		return 0, session.ErrNoPort
	}
	return port, nil
}

func (p *Ports) logSkipped(skipped []int, took int, err error) {
	if len(skipped) > 0 {
		p.log.Warn("session ports held by another process of this host: skipped", logKeyCount, len(skipped),
			logKeyPorts, skipped[:min(len(skipped), 10)], logKeyTook, took, logKeyErr, err)
	}
}

// Claim takes a given port (restoring a session on its port), unless a
// live node, this one included, holds it.
func (p *Ports) Claim(port int) error {
	if port < p.base || port >= p.base+p.count {
		return fmt.Errorf("port %d outside [%d, %d): %w", port, p.base, p.base+p.count, session.ErrPortInUse)
	}
	ctx, cancel := p.ctx()
	defer cancel()
	if err := p.usable(); err != nil {
		return err
	}
	p.retryReleases(ctx)
	k := p.n.keys
	holder, err := claimPortScript.Run(ctx, p.n.rdb, []string{k.ports(), k.nodes()}, port, p.n.info.Member()).Text()
	if err != nil {
		return fmt.Errorf("claim port %d: %w", port, err)
	}
	if holder != "" {
		return fmt.Errorf("port %d held by node %s: %w", port, holder, session.ErrPortHeldByNode)
	}
	return nil
}

// Release gives a port back if this node holds it. When Redis cannot be
// reached, the port is remembered and released before the next Acquire or
// Claim (until then no one takes it: this node still holds it).
func (p *Ports) Release(port int) {
	ctx, cancel := p.ctx()
	defer cancel()
	if err := p.release(ctx, port); err != nil {
		p.log.Warn("port release failed: retried later", logKeyPort, port, logKeyErr, err)
		p.mu.Lock()
		p.pending[port] = true
		p.mu.Unlock()
	}
}

func (p *Ports) release(ctx context.Context, port int) error {
	return releasePortScript.Run(ctx, p.n.rdb, []string{p.n.keys.ports()}, strconv.Itoa(port), p.n.info.Member()).Err()
}

func (p *Ports) retryReleases(ctx context.Context) {
	p.mu.Lock()
	ports := make([]int, 0, len(p.pending))
	for port := range p.pending {
		ports = append(ports, port)
	}
	p.mu.Unlock()
	for _, port := range ports {
		if err := p.release(ctx, port); err != nil {
			return
		}
		p.mu.Lock()
		delete(p.pending, port)
		p.mu.Unlock()
	}
}

// usable refuses to take ports for a node that is lost: they would be
// marked with an incarnation the others treat as dead.
func (p *Ports) usable() error {
	if err := p.n.Err(); err != nil {
		return fmt.Errorf("port pool: %w", err)
	}
	return nil
}

func (p *Ports) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), p.timeout)
}
