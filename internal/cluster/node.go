package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultLeaseTime is how long a lease and a heartbeat last without being
// extended: a lost node's sessions are free to move after at most this.
const DefaultLeaseTime = 5 * time.Second

// MinLeaseTime bounds the lease time from below: a third of it is the
// period of the heartbeat loop, and must leave room for a Redis round trip.
const MinLeaseTime = 300 * time.Millisecond

// driftMargin is the share of the lease time a holder gives up to clock
// rate differences between itself and Redis and to its own scheduling
// delays: it treats a lease as lost at send time + lease time ×
// (1 - driftMargin), before Redis lets any other node take it.
const driftMargin = 0.2

// Load is what a node reports of itself in each heartbeat.
type Load struct {
	Peers    int `json:"peers"`
	Sessions int `json:"sessions"`
}

// Config describes a node.
type Config struct {
	Name         string        // key prefix shared by the cluster's nodes, e.g. "rehabrtc"
	NodeID       string        // unique among live nodes; kept across restarts
	InternalAddr string        // host:port other nodes reach this one on
	LeaseTime    time.Duration // 0: DefaultLeaseTime
	Load         func() Load   // read at each heartbeat; nil reports only the leases held
	Logger       *slog.Logger  // nil: discard

	// Running is the store's set of running session ids
	// (redisstore.Store.RunningKey), under the same "{Name}" hash tag: the
	// claim by lost node reads it (claim.go). Without it Homes.Lost fails.
	Running string
}

func (c *Config) validate() error {
	switch {
	case c.Name == "" || strings.ContainsAny(c.Name, "{}"):
		return fmt.Errorf("cluster name %q: must be non-empty, without braces", c.Name)
	case c.NodeID == "" || strings.ContainsAny(c.NodeID, "# {}\t\n"):
		return fmt.Errorf("node id %q: must be non-empty, without '#', braces or spaces", c.NodeID)
	case c.Running != "" && !strings.HasPrefix(c.Running, "{"+c.Name+"}:"):
		return fmt.Errorf("running set %q: must be a key of the cluster's hash tag {%s}", c.Running, c.Name)
	case c.LeaseTime != 0 && c.LeaseTime < MinLeaseTime:
		return fmt.Errorf("lease time %s: must be at least %s", c.LeaseTime, MinLeaseTime)
	}
	return nil
}

// NodeInfo is one live node as its last heartbeat described it.
type NodeInfo struct {
	ID           string    `json:"id"`
	Incarnation  int64     `json:"incarnation"`
	InternalAddr string    `json:"internal_addr"`
	Started      time.Time `json:"started"`
	Load         Load      `json:"load"`
	Sessions     []int64   `json:"sessions"` // the sessions whose leases it holds
	// Expires is when its heartbeat runs out, by Redis's clock, and
	// ExpiresIn how long that was after Redis's clock when it was read.
	Expires   time.Time     `json:"-"`
	ExpiresIn time.Duration `json:"-"`
}

// Member is the node incarnation's name in Redis: "id#incarnation".
func (i NodeInfo) Member() string { return member(i.ID, i.Incarnation) }

func member(id string, inc int64) string { return id + "#" + strconv.FormatInt(inc, 10) }

// Node is this process's membership of the cluster: its heartbeat, the
// leases it holds, and the port pool it takes ports from.
type Node struct {
	rdb  redis.UniversalClient
	cfg  Config
	ttl  time.Duration
	keys keys
	info NodeInfo // ID, Incarnation, InternalAddr, Started: fixed at Join
	log  *slog.Logger
	f    *fence // the node's own liveness

	mu     sync.Mutex // guards leases
	leases map[int64]*Lease

	lastBeat   atomic.Int64 // unix ns of the last heartbeat Redis took (sent time)
	leasesLost atomic.Int64 // leases lost while held (not released)

	cancel context.CancelFunc
	done   chan struct{}
}

type keys struct{ prefix string }

func (k keys) nodeSeq() string  { return k.prefix + ":node:seq" }
func (k keys) nodes() string    { return k.prefix + ":nodes" }
func (k keys) info() string     { return k.prefix + ":nodes:info" }
func (k keys) fenceSeq() string { return k.prefix + ":lease:seq" }
func (k keys) ports() string    { return k.prefix + ":ports" }
func (k keys) portNext() string { return k.prefix + ":ports:next" }
func (k keys) lease(id int64) string {
	return k.prefix + ":lease:" + strconv.FormatInt(id, 10)
}

// Join registers a new incarnation of cfg.NodeID and starts its heartbeat.
// When a previous incarnation of the same id is still alive (a restart
// after kill -9 within the lease time), Join waits for its heartbeat to
// expire, up to ctx's deadline: two live incarnations of one id would
// serve the same sessions. Close ends it.
func Join(ctx context.Context, rdb redis.UniversalClient, cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{rdb: rdb, cfg: cfg, ttl: cmpOr(cfg.LeaseTime, DefaultLeaseTime),
		keys: keys{"{" + cfg.Name + "}"}, log: cfg.Logger, leases: map[int64]*Lease{}, done: make(chan struct{})}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	inc, err := rdb.Incr(ctx, n.keys.nodeSeq()).Result()
	if err != nil {
		return nil, fmt.Errorf("join cluster: %w", err)
	}
	n.info = NodeInfo{ID: cfg.NodeID, Incarnation: inc, InternalAddr: cfg.InternalAddr, Started: time.Now().UTC()}
	sent, err := n.register(ctx)
	if err != nil {
		return nil, err
	}
	n.f = newFence(n.deadline(sent))
	n.lastBeat.Store(sent.UnixNano())
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	go n.run(loopCtx)
	n.log.Info("joined cluster", logKeyNode, n.info.Member(), logKeyLease, n.ttl)
	return n, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// register writes the first heartbeat, waiting while another incarnation
// of the node id is alive. It returns when the heartbeat that succeeded
// was sent.
func (n *Node) register(ctx context.Context) (time.Time, error) {
	for {
		sent := time.Now()
		wait, err := n.heartbeat(ctx, true)
		if err != nil {
			return sent, fmt.Errorf("join cluster: %w", err)
		}
		if wait == 0 {
			return sent, nil
		}
		n.log.Warn("another incarnation of this node id is alive: waiting for its heartbeat to expire",
			logKeyNodeID, n.cfg.NodeID, logKeyWait, wait)
		select {
		case <-ctx.Done():
			return sent, fmt.Errorf("join cluster: node id %q is in use by a live node (is another rehabrtc configured with it?): %w",
				n.cfg.NodeID, ctx.Err())
		case <-time.After(wait + 10*time.Millisecond):
		}
	}
}

// Info is this node as it describes itself.
func (n *Node) Info() NodeInfo { return n.info }

// LeaseTime is how long leases and heartbeats last.
func (n *Node) LeaseTime() time.Duration { return n.ttl }

// Lost is closed when this node incarnation is over: its heartbeat was not
// extended in time, or it had already expired in Redis. Every lease it
// held is lost with it; the process must stop serving and Join again.
func (n *Node) Lost() <-chan struct{} { return n.f.lost }

// Err says why the node was lost (nil while it is not).
func (n *Node) Err() error { return n.f.Err() }

// deadline is the local time until which something extended at sent is
// still ours, with the drift margin given up.
func (n *Node) deadline(sent time.Time) time.Time {
	return sent.Add(time.Duration(float64(n.ttl) * (1 - driftMargin)))
}

func (n *Node) run(ctx context.Context) {
	defer close(n.done)
	t := time.NewTicker(n.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.f.lost:
			n.log.Error("cluster node lost: it serves nothing until it joins again", logKeyNode, n.info.Member(), logKeyErr, n.f.Err())
			n.loseAll(n.f.Err())
			return
		case <-t.C:
			n.beat(ctx)
		}
	}
}

// beat writes the heartbeat, then extends every lease. A call is bounded
// by a third of the lease time, so a slow Redis never delays the next
// beat; the fences' own timers enforce the deadlines meanwhile.
func (n *Node) beat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, n.ttl/3)
	defer cancel()
	sent := time.Now()
	_, err := n.heartbeat(ctx, false)
	switch {
	case errors.Is(err, ErrNodeLost):
		n.f.lose(err)
		n.loseAll(err)
		return
	case err != nil:
		n.log.Warn("cluster heartbeat failed", logKeyErr, err)
	default:
		n.f.extend(n.deadline(sent))
		n.lastBeat.Store(sent.UnixNano())
	}
	n.renew(ctx)
}

// heartbeat writes one heartbeat. On the first (registration), wait is
// how long another live incarnation of the id has left, when there is one.
func (n *Node) heartbeat(ctx context.Context, first bool) (wait time.Duration, err error) {
	info := n.info
	info.Sessions = n.heldSessions()
	if n.cfg.Load != nil {
		info.Load = n.cfg.Load()
	} else {
		info.Load.Sessions = len(info.Sessions)
	}
	data, err := json.Marshal(info)
	if err != nil {
		return 0, err
	}
	flag := "0"
	if first {
		flag = "1"
	}
	res, err := heartbeatScript.Run(ctx, n.rdb, []string{n.keys.nodes(), n.keys.info()},
		info.Member(), n.ttl.Milliseconds(), data, flag, n.cfg.NodeID).Int64()
	switch {
	case err != nil:
		return 0, fmt.Errorf("heartbeat: %w", err)
	case res < 0:
		return time.Duration(-res) * time.Millisecond, nil
	case res == 0:
		return 0, ErrNodeLost
	}
	return 0, nil
}

func (n *Node) heldSessions() []int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := make([]int64, 0, len(n.leases))
	for id := range n.leases {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (n *Node) loseAll(err error) {
	n.mu.Lock()
	held := n.leases
	n.leases = map[int64]*Lease{}
	n.mu.Unlock()
	n.leasesLost.Add(int64(len(held)))
	for _, l := range held {
		l.f.lose(err)
	}
}

// Close stops the heartbeat, releases every lease (other nodes may take
// them at once) and leaves the cluster, so the ports this incarnation held
// are free. Its leases are lost (ErrClosed) for their holders.
func (n *Node) Close(ctx context.Context) error {
	n.cancel()
	<-n.done
	n.f.lose(ErrClosed) // first: an Acquire from now on gives its lease back itself
	n.mu.Lock()
	held := n.leases
	n.leases = map[int64]*Lease{}
	n.mu.Unlock()
	var errs []error
	for _, l := range held {
		l.f.lose(ErrClosed)
		errs = append(errs, l.release(ctx))
	}
	if err := leaveScript.Run(ctx, n.rdb, []string{n.keys.nodes(), n.keys.info()}, n.info.Member()).Err(); err != nil {
		errs = append(errs, fmt.Errorf("leave cluster: %w", err))
	}
	n.log.Info("left cluster", logKeyNode, n.info.Member())
	return errors.Join(errs...)
}

// Nodes lists the live nodes (heartbeat not expired by Redis's clock), by
// id then incarnation.
func Nodes(ctx context.Context, rdb redis.UniversalClient, name string) ([]NodeInfo, error) {
	k := keys{"{" + name + "}"}
	vals, err := nodesScript.Run(ctx, rdb, []string{k.nodes(), k.info()}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	if len(vals)%3 != 1 {
		return nil, fmt.Errorf("list nodes: unexpected reply of %d values", len(vals))
	}
	now, err := strconv.ParseInt(vals[len(vals)-1], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("list nodes: bad server time %q", vals[len(vals)-1])
	}
	var out []NodeInfo
	for i := 0; i+2 < len(vals); i += 3 {
		var info NodeInfo
		if err := json.Unmarshal([]byte(vals[i+2]), &info); err != nil {
			return nil, fmt.Errorf("list nodes: node %s: bad heartbeat: %w", vals[i], err)
		}
		exp, err := strconv.ParseInt(vals[i+1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list nodes: node %s: bad expiry %q", vals[i], vals[i+1])
		}
		info.Expires = time.UnixMilli(exp).UTC()
		info.ExpiresIn = time.Duration(exp-now) * time.Millisecond
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int {
		return cmpNodes(a, b)
	})
	return out, nil
}

func cmpNodes(a, b NodeInfo) int {
	if c := strings.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	return int(a.Incarnation - b.Incarnation)
}

// Weights turn a node's load into one number to compare nodes by.
type Weights struct {
	Peers    float64
	Sessions float64
}

// DefaultWeights count a session as much as four peers: a session costs
// its port, lease and hub whether anyone is in it or not.
func DefaultWeights() Weights { return Weights{Peers: 1, Sessions: 4} }

// LeastLoaded returns the node with the lowest weighted load; ties go to
// the lowest id, so every node picks the same one from the same view.
// It reports false for an empty list.
func LeastLoaded(nodes []NodeInfo, w Weights) (NodeInfo, bool) {
	var best NodeInfo
	found, bestScore := false, 0.0
	for _, n := range nodes {
		s := w.Peers*float64(n.Load.Peers) + w.Sessions*float64(n.Load.Sessions)
		if !found || s < bestScore || (s == bestScore && cmpNodes(n, best) < 0) {
			best, bestScore, found = n, s, true
		}
	}
	return best, found
}
