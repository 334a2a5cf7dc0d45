package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Lease says that this node is the home of a session: only the holder of
// a session's lease serves it. It is extended by the node's heartbeat
// loop; when an extension fails or comes too late, Lost closes, before
// Redis lets any other node take the lease, and the holder must stop
// serving the session at once.
type Lease struct {
	n       *Node
	session int64
	token   int64
	key     string
	value   string // "member token": what compare-and-extend compares
	f       *fence
}

// Acquire takes the lease of a session for this node. It fails with a
// *HeldError (errors.Is ErrHeld) when another holder has it, and with
// ErrNodeLost or ErrClosed when this node can hold nothing.
func (n *Node) Acquire(ctx context.Context, session int64) (*Lease, error) {
	if err := n.f.Err(); err != nil {
		return nil, fmt.Errorf("acquire lease of session %d: %w", session, err)
	}
	n.mu.Lock()
	_, held := n.leases[session]
	n.mu.Unlock()
	if held {
		return nil, &HeldError{Session: session, Holder: n.info.Member()}
	}
	key := n.keys.lease(session)
	sent := time.Now()
	res, err := acquireLeaseScript.Run(ctx, n.rdb, []string{key, n.keys.fenceSeq(), n.keys.held(n.info.Member()), n.keys.holders()},
		n.info.Member(), n.ttl.Milliseconds(), session).Slice()
	if err != nil {
		return nil, fmt.Errorf("acquire lease of session %d: %w", session, err)
	}
	if len(res) != 2 {
		return nil, fmt.Errorf("acquire lease of session %d: unexpected reply %v", session, res)
	}
	got, _ := res[0].(int64)
	val, _ := res[1].(string)
	if got != 1 {
		holder, tok := parseLease(val)
		return nil, &HeldError{Session: session, Holder: holder, Token: tok}
	}
	tok, err := strconv.ParseInt(val, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("acquire lease of session %d: bad token %q", session, val)
	}
	l := &Lease{n: n, session: session, token: tok, key: key,
		value: n.info.Member() + " " + val, f: newFence(n.deadline(sent))}
	n.mu.Lock()
	n.leases[session] = l
	n.mu.Unlock()
	// A node lost or closed meanwhile may not have seen this lease: give
	// it back, so nobody waits for its expiry.
	if err := n.f.Err(); err != nil {
		n.forget(l)
		l.f.lose(err)
		_ = l.release(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("acquire lease of session %d: %w", session, err)
	}
	return l, nil
}

func parseLease(v string) (holder string, token int64) {
	holder, tok, _ := strings.Cut(v, " ")
	token, _ = strconv.ParseInt(tok, 10, 64)
	return holder, token
}

// Session is the session this lease is for.
func (l *Lease) Session() int64 { return l.session }

// Token is the lease's fencing token: it grows with every acquisition of
// any lease of the cluster, so a write stamped with an older token than
// the session's last one comes from a holder that has lost it.
func (l *Lease) Token() int64 { return l.token }

// Lost is closed when the lease is lost: not extended in time
// (ErrExpired), taken over (ErrTakenOver), its node lost (ErrNodeLost) or
// closed (ErrClosed). It is not closed by Release.
func (l *Lease) Lost() <-chan struct{} { return l.f.lost }

// Err says why the lease was lost (nil while it is held).
func (l *Lease) Err() error { return l.f.Err() }

// Release gives the lease up (compare and delete: never someone else's),
// so another node may take it at once.
//
// A lease already lost has nothing of this holder left in Redis: Release
// returns at once. A node lost while its release waits for Redis (cut off:
// the call would hang until ctx ends) gives up then, since every lease of
// a lost node expires in Redis by itself; a node cut from Redis then exits
// in seconds rather than after its callers' timeouts.
func (l *Lease) Release(ctx context.Context) error {
	l.n.forget(l)
	l.f.stop()
	if l.f.Err() != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	wg.Go(func() {
		select {
		case <-l.n.Lost():
			cancel()
		case <-done:
		}
	})
	return l.release(ctx)
}

func (l *Lease) release(ctx context.Context) error {
	if err := releaseLeaseScript.Run(ctx, l.n.rdb, l.n.releaseKeys(l), l.value, l.session).Err(); err != nil {
		return fmt.Errorf("release lease of session %d: %w", l.session, err)
	}
	return nil
}

func (n *Node) forget(l *Lease) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leases[l.session] == l {
		delete(n.leases, l.session)
	}
}

// renewBatch bounds the keys of one compare-and-extend call.
const renewBatch = 500

// renew extends every lease held, in batches; a lease whose value has
// changed in Redis is lost at once.
func (n *Node) renew(ctx context.Context) {
	n.mu.Lock()
	held := make([]*Lease, 0, len(n.leases))
	var expired []*Lease
	for id, l := range n.leases {
		if l.f.Err() != nil {
			delete(n.leases, id)
			expired = append(expired, l)
			continue
		}
		held = append(held, l)
	}
	n.mu.Unlock()
	// A lease that expired here may still be ours in Redis (the drift
	// margin): delete it, so another node need not wait for Redis's expiry.
	n.leasesLost.Add(int64(len(expired)))
	for _, l := range expired {
		n.log.Error("lease lost", logKeySession, l.session, logKeyToken, l.token, logKeyErr, l.Err())
		if err := l.release(ctx); err != nil {
			n.log.Warn("release of a lost lease failed", logKeySession, l.session, logKeyErr, err)
		}
	}
	for len(held) > 0 {
		b := held[:min(len(held), renewBatch)]
		held = held[len(b):]
		if err := n.renewBatch(ctx, b); err != nil {
			n.log.Warn("lease renewal failed", logKeyCount, len(b), logKeyErr, err)
		}
	}
}

func (n *Node) renewBatch(ctx context.Context, b []*Lease) error {
	keys := make([]string, len(b))
	args := make([]any, 1, len(b)+1)
	args[0] = n.ttl.Milliseconds()
	for i, l := range b {
		keys[i] = l.key
		args = append(args, l.value)
	}
	sent := time.Now()
	res, err := renewLeasesScript.Run(ctx, n.rdb, keys, args...).Int64Slice()
	if err != nil {
		return err
	}
	if len(res) != len(b) {
		return fmt.Errorf("unexpected reply of %d values for %d leases", len(res), len(b))
	}
	for i, l := range b {
		if res[i] == 1 {
			l.f.extend(n.deadline(sent))
			continue
		}
		n.forget(l)
		n.leasesLost.Add(1)
		l.f.lose(ErrTakenOver)
		n.log.Error("lease lost: taken over", logKeySession, l.session, logKeyToken, l.token)
	}
	return nil
}
