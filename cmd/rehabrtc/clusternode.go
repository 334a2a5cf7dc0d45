package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/cluster"
	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/gateway"
	"github.com/rehabrtc/rehabrtc/internal/hub"
	"github.com/rehabrtc/rehabrtc/internal/ports"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/redisstore"
)

// rpcOnceTTL is how long the key that elects the node answering an
// OpenTera RPC lives: longer than any caller waits (10 s).
const rpcOnceTTL = time.Minute

// lostLeaveTimeout bounds a lost node's goodbye to Redis on its way out.
const lostLeaveTimeout = time.Second

// clusterNode is serve's membership of a cluster (RehabRTC.cluster): the
// shared store, port pool and session homes on Redis.
type clusterNode struct {
	cfg    config.Cluster
	rdb    redis.UniversalClient
	node   *cluster.Node
	homes  *cluster.Homes
	store  *redisstore.Store
	ports  *cluster.Ports
	secret string
	mgr    atomic.Pointer[session.Manager] // for the heartbeat's load; set once built
	stats  clusterCounters                 // for the metrics (clustermetrics.go)

	drainOnce sync.Once
	drainReq  chan struct{} // closed by `rehabrtc cluster drain` (DrainPath)
}

// joinCluster joins the cluster; it waits (bounded) while a previous
// incarnation of this node id is still alive.
func joinCluster(cfg *config.Config, counters *hub.Counters, log *slog.Logger) (*clusterNode, error) {
	rdb, err := clusterRedis(cfg)
	if err != nil {
		return nil, err
	}
	cl := cfg.RehabRTC.Cluster
	if cl.NodeID == "" {
		if cl.NodeID, err = os.Hostname(); err != nil {
			rdb.Close()
			return nil, fmt.Errorf("cluster node id: %w", err)
		}
	}
	c := &clusterNode{cfg: cl, rdb: rdb, store: redisstore.New(rdb, cl.Name), drainReq: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Duration(cl.LeaseTimeMS)*time.Millisecond+5*time.Second)
	defer cancel()
	if c.secret, err = cluster.Secret(ctx, rdb, cl.Name); err != nil {
		rdb.Close()
		return nil, err
	}
	// A store written by a version without the running set gets it here,
	// once: the claim loop reads it (docs/scale-out.md).
	if err := c.store.IndexRunning(ctx); err != nil {
		rdb.Close()
		return nil, err
	}
	c.node, err = cluster.Join(ctx, rdb, cluster.Config{
		Name: cl.Name, NodeID: cl.NodeID, InternalAddr: cl.InternalAddr,
		LeaseTime: time.Duration(cl.LeaseTimeMS) * time.Millisecond,
		Running:   c.store.RunningKey(),
		Load: func() cluster.Load {
			l := cluster.Load{Peers: int(counters.PeersConnected.Load())}
			if m := c.mgr.Load(); m != nil {
				l.Sessions = m.Running()
			}
			return l
		},
		Logger: log.With(logKeyComponent, "cluster"),
	})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	w := cfg.WebRTC
	c.ports = c.node.Ports(w.LocalBasePort, w.MaxSessions).WithProbe(ports.BindProbe(cmp.Or(cfg.RehabRTC.SessionBind, "127.0.0.1")))
	c.homes = c.node.Homes(c.secret)
	return c, nil
}

// once elects the node that answers an OpenTera RPC (every node gets it).
func (c *clusterNode) once(ctx context.Context, key string) (bool, error) {
	return cluster.Once(ctx, c.rdb, c.cfg.Name, key, rpcOnceTTL)
}

// lost is closed when this node's incarnation is over (nil channel without
// a cluster: never).
func (c *clusterNode) lost() <-chan struct{} {
	if c == nil {
		return nil
	}
	return c.node.Lost()
}

// drainRequested is closed when `rehabrtc cluster drain` asks this node to
// drain and exit (nil channel without a cluster: never).
func (c *clusterNode) drainRequested() <-chan struct{} {
	if c == nil {
		return nil
	}
	return c.drainReq
}

// errNodeLost is serve's error when its incarnation is lost (cut from
// Redis longer than the lease allows): every session has already stopped
// here; a supervisor restarts the process, which joins again.
var errNodeLost = errors.New("cluster: this node lost its membership (Redis unreachable for longer than the lease time); " +
	"its sessions move to the other nodes; restart it to join again")

// claimLoop restores here, every third of the lease time, the running
// sessions whose home is lost, until ctx ends.
func (c *clusterNode) claimLoop(ctx context.Context, m *session.Manager, log *slog.Logger) {
	t := time.NewTicker(c.node.LeaseTime() / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.node.Lost():
			return
		case <-t.C:
		}
		n, err := m.Claim(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("cannot look for sessions to claim", "err", err)
		}
		if n > 0 {
			c.stats.claimed.Add(int64(n))
			log.Info("sessions claimed from a lost node", "count", n)
		}
	}
}

// drain hands every session of this node to the least loaded other nodes,
// each claimed there at once, and returns when this node serves nothing
// (RehabRTC.cluster.drain_on_stop). Its pages are told to reconnect and come
// back through any gateway; a session that cannot be handed over is
// claimed by another node's claim loop.
func (c *clusterNode) drain(ctx context.Context, m *session.Manager, log *slog.Logger) {
	d, err := c.homes.Handover(ctx)
	if err != nil {
		log.Warn("drain: cannot list the other nodes; they claim the sessions at their next claim loop", logKeyErr, err)
		m.Shutdown(ctx)
		return
	}
	log.Info("draining: handing every session to the other nodes", "sessions", m.Running())
	m.Drain(ctx, func(ctx context.Context, id int64) {
		to, err := d.To(ctx, id)
		if err != nil {
			log.Warn("session not handed over: another node claims it at its next claim loop", "session", id, logKeyErr, err)
			return
		}
		log.Info("session handed over", "session", id, "to", to.Member())
	})
}

// internalHandler is what the other nodes reach at internal_addr: the
// actions they forward, and the pages and WebSockets of the sessions this
// node serves (a local gateway: it never proxies further).
func (c *clusterNode) internalHandler(m *session.Manager, api http.Handler, sessions gateway.Sessions, bind string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(cluster.ManagePath, cluster.ManageHandler(m, c.secret))
	mux.Handle(cluster.ClaimPath, cluster.ClaimHandler(m, c.secret))
	mux.Handle(cluster.DrainPath, cluster.DrainHandler(func() { c.drainOnce.Do(func() { close(c.drainReq) }) }, c.secret))
	mux.Handle("/", clientFromNode(gateway.New(api, sessions, bind)))
	return mux
}

// clientFromNode makes the last X-Forwarded-For hop, which the proxying
// node's gateway wrote, the request's remote address: the per-address caps
// of the home then count the patient, not the node in front of it (on
// another host, the node's own address is not loopback, which the hub
// trusts). internal_addr must be reachable by the nodes only, like Redis.
func clientFromNode(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hops := r.Header.Values("X-Forwarded-For"); len(hops) > 0 {
			last := hops[len(hops)-1]
			if ip, err := netip.ParseAddr(strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:])); err == nil {
				r2 := *r
				r2.RemoteAddr = netip.AddrPortFrom(ip, 0).String()
				r2.Header = r.Header.Clone()
				r2.Header.Del("X-Forwarded-For")
				r = &r2
			}
		}
		h.ServeHTTP(w, r)
	})
}

// close leaves the cluster (leases released, ports freed) and closes Redis.
func (c *clusterNode) close(ctx context.Context) error {
	if c == nil {
		return nil
	}
	select {
	case <-c.node.Lost():
		// Cut from Redis for a whole lease: its leases and heartbeat have
		// expired there already. Try once, briefly, rather than hold the
		// exit (and the supervisor's restart) for the drain timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, lostLeaveTimeout)
		defer cancel()
	default:
	}
	err := c.node.Close(ctx)
	return errors.Join(err, c.rdb.Close())
}
