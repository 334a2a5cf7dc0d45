package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// The claim by lost node. Every lease taken is added, in the same script,
// to its holder's held set ({name}:held:<id#incarnation>), and every
// incarnation with a held set is listed in {name}:held. A survivor's claim
// loop reads only the held sets of the incarnations whose heartbeat has
// expired, and the orphans ({name}:orphans: sessions released while still
// running, by a node stopping, a hand-over or a claim that must wait): its
// cost follows what was lost, not the sessions running or kept. A slow
// sweep over the store's running set finds what no set names (the whole
// cluster stopped, Redis restarted without AOF). See docs/scale-out.md.

var _ session.LostHomes = (*Homes)(nil)

// DefaultSweepEvery is how often one node of the cluster sweeps the running
// set for sessions without a lease.
const DefaultSweepEvery = 30 * time.Second

// settleBatch bounds the ids of one settle or sweep call.
const settleBatch = 500

// errNoRunning is Lost's error on a node joined without Config.Running.
var errNoRunning = errors.New("cluster: no running-sessions set (Config.Running): cannot tell which lost sessions still run")

func (k keys) holders() string           { return k.prefix + ":held" }
func (k keys) held(member string) string { return k.prefix + ":held:" + member }
func (k keys) orphans() string           { return k.prefix + ":orphans" }
func (k keys) sweep() string             { return k.prefix + ":sweep" }
func (n *Node) releaseKeys(l *Lease) []string {
	ks := []string{l.key, n.keys.held(n.info.Member()), n.keys.orphans()}
	if n.cfg.Running != "" {
		ks = append(ks, n.cfg.Running)
	}
	return ks
}

// lostHoldersScript: KEYS holders, nodes. Returns the incarnations with a
// held set whose heartbeat has expired (or who left).
var lostHoldersScript = redis.NewScript(nowMS + aliveFn + `
local out = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not alive(KEYS[2], m) then table.insert(out, m) end
end
return out
`)

// settleScript: KEYS a held set (or the orphans), holders, running, then
// the leases of the ids; ARGV the set's incarnation ("" for the orphans),
// then the ids. It drops from the set each id held by another incarnation
// (it is in that one's set now) or no longer running, and returns the ids
// running without a lease: the ones to claim. A lost incarnation's set
// left empty is forgotten.
var settleScript = redis.NewScript(`
local out = {}
for i = 4, #KEYS do
  local id = ARGV[i - 2]
  local v = redis.call('GET', KEYS[i])
  if v then
    if string.match(v, '^(%S+)') ~= ARGV[1] then redis.call('SREM', KEYS[1], id) end
  elseif redis.call('SISMEMBER', KEYS[3], id) == 1 then
    table.insert(out, id)
  else
    redis.call('SREM', KEYS[1], id)
  end
end
if ARGV[1] ~= '' and redis.call('SCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return out
`)

// claimStats counts where Lost found the sessions it returned.
type claimStats struct {
	fromSets  atomic.Int64 // in a lost incarnation's held set
	orphans   atomic.Int64 // in the orphans
	swept     atomic.Int64 // put in the orphans by this node's sweep
	sweeps    atomic.Int64
	lastSweep atomic.Int64 // unix ns
}

// ClaimStats is what a node's claim loop found: sessions in lost nodes'
// held sets, in the orphans, and sessions without a lease its sweeps
// found (counted again when claimed from the orphans).
type ClaimStats struct {
	FromLostNodes, Orphans, Swept, Sweeps int64
}

// ClaimStats returns the figures of this node's claims so far.
func (h *Homes) ClaimStats() ClaimStats {
	s := &h.claims
	return ClaimStats{FromLostNodes: s.fromSets.Load(), Orphans: s.orphans.Load(), Swept: s.swept.Load(), Sweeps: s.sweeps.Load()}
}

// WithSweepEvery sets how often the sweep runs (DefaultSweepEvery); one
// node of the cluster sweeps per period.
func (h *Homes) WithSweepEvery(d time.Duration) *Homes {
	h.sweepEvery = d
	return h
}

// Lost returns the running sessions that no node holds and that a lost
// node held (its held set) or that were let go while running (the
// orphans), in no order (session.LostHomes). When this node's sweep is due
// and no other node has swept for a sweep period, it first sweeps the
// running set. A session in a lost node's set whose lease has not expired
// yet is returned at a later call.
func (h *Homes) Lost(ctx context.Context) ([]int64, error) {
	k, rdb := h.n.keys, h.n.rdb
	if h.n.cfg.Running == "" {
		return nil, errNoRunning
	}
	if err := h.sweepIfDue(ctx); err != nil {
		h.n.log.Warn("sweep of the running sessions failed", logKeyErr, err)
	}
	dead, err := lostHoldersScript.Run(ctx, rdb, []string{k.holders(), k.nodes()}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("find lost nodes: %w", err)
	}
	var out []int64
	for _, m := range dead {
		ids, err := h.settle(ctx, k.held(m), m)
		if err != nil {
			return nil, err
		}
		h.claims.fromSets.Add(int64(len(ids)))
		out = append(out, ids...)
	}
	ids, err := h.settle(ctx, k.orphans(), "")
	if err != nil {
		return nil, err
	}
	h.claims.orphans.Add(int64(len(ids)))
	out = append(out, ids...)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// settle reads one held set (or the orphans) and settles it in batches
// (settleScript), returning the ids to claim.
func (h *Homes) settle(ctx context.Context, set, member string) ([]int64, error) {
	k, rdb := h.n.keys, h.n.rdb
	vals, err := rdb.SMembers(ctx, set).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", set, err)
	}
	var out []int64
	for first := true; first || len(vals) > 0; first = false { // once at least: an empty set is forgotten too
		b := vals[:min(len(vals), settleBatch)]
		vals = vals[len(b):]
		keys := []string{set, k.holders(), h.n.cfg.Running}
		args := []any{member}
		for _, v := range b {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("read %s: bad id %q", set, v)
			}
			keys = append(keys, k.lease(id))
			args = append(args, id)
		}
		res, err := settleScript.Run(ctx, rdb, keys, args...).StringSlice()
		if err != nil {
			return nil, fmt.Errorf("settle %s: %w", set, err)
		}
		for _, v := range res {
			id, _ := strconv.ParseInt(v, 10, 64)
			out = append(out, id)
		}
	}
	return out, nil
}

// sweepIfDue sweeps when this node has not for a sweep period and wins the
// cluster's sweep for this period (SET NX with the period as expiry).
func (h *Homes) sweepIfDue(ctx context.Context) error {
	every := cmpOr(h.sweepEvery, DefaultSweepEvery)
	if time.Since(time.Unix(0, h.claims.lastSweep.Load())) < every {
		return nil
	}
	h.claims.lastSweep.Store(time.Now().UnixNano())
	won, err := h.n.rdb.SetNX(ctx, h.n.keys.sweep(), h.n.info.Member(), every).Result()
	if err != nil || !won {
		return err
	}
	n, err := h.sweep(ctx)
	h.claims.sweeps.Add(1)
	h.claims.swept.Add(int64(n))
	if n > 0 {
		h.n.log.Warn("sweep found running sessions without a lease that no lost node listed", logKeyCount, n)
	}
	return err
}

// sweep puts in the orphans every running session without a lease: it
// reads the running set and the leases (MGET), in batches, never a record.
// It returns how many it found.
func (h *Homes) sweep(ctx context.Context) (int, error) {
	rdb := h.n.rdb
	found := 0
	var cursor uint64
	for {
		vals, next, err := rdb.SScan(ctx, h.n.cfg.Running, cursor, "", settleBatch).Result()
		if err != nil {
			return found, fmt.Errorf("sweep: %w", err)
		}
		n, err := h.sweepBatch(ctx, vals)
		found += n
		if err != nil {
			return found, err
		}
		if cursor = next; cursor == 0 {
			return found, nil
		}
	}
}

func (h *Homes) sweepBatch(ctx context.Context, vals []string) (int, error) {
	if len(vals) == 0 {
		return 0, nil
	}
	keys := make([]string, 0, len(vals))
	for _, v := range vals {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("sweep: bad id %q in %s", v, h.n.cfg.Running)
		}
		keys = append(keys, h.n.keys.lease(id))
	}
	leases, err := h.n.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	var free []any
	for i, l := range leases {
		if l == nil {
			free = append(free, vals[i])
		}
	}
	if len(free) == 0 {
		return 0, nil
	}
	if err := h.n.rdb.SAdd(ctx, h.n.keys.orphans(), free...).Err(); err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	return len(free), nil
}
