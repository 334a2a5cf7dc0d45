package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Homes is the cluster's side of session homing (session.Homes): a
// session's home is the holder of its lease, and an action on a session
// served by another node is forwarded to that node's internal address.
type Homes struct {
	n      *Node
	secret string
	client *http.Client

	forwarded atomic.Int64 // actions sent to their session's home
	placed    atomic.Int64 // starts sent to a less loaded node

	sweepEvery time.Duration // 0: DefaultSweepEvery (claim.go)
	claims     claimStats
}

var _ session.Homes = (*Homes)(nil)

// ManagePath is where a node's internal listener takes forwarded
// session_manage actions.
const ManagePath = "/internal/v1/manage"

// forwardTimeout bounds a forwarded action: the home runs it under its
// own bounds, and an RPC caller waits 10 s.
const forwardTimeout = 8 * time.Second

// Homes returns the node's session homing. secret authenticates the calls
// between nodes (see Secret).
func (n *Node) Homes(secret string) *Homes {
	return &Homes{n: n, secret: secret, client: &http.Client{Timeout: forwardTimeout}}
}

// Take takes the session's lease; another holder makes it fail with
// session.ErrElsewhere.
func (h *Homes) Take(ctx context.Context, id int64) (session.Home, error) {
	l, err := h.n.Acquire(ctx, id)
	if errors.Is(err, ErrHeld) {
		return nil, fmt.Errorf("%w: %w", session.ErrElsewhere, err)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// homeScript: KEYS lease of a session, nodes, info. It returns the
// holder's heartbeat (JSON) when a live node holds the lease, else false.
var homeScript = redis.NewScript(nowMS + aliveFn + `
local v = redis.call('GET', KEYS[1])
if not v then return false end
local m = string.match(v, '^(%S+)')
if not m or not alive(KEYS[2], m) then return false end
return redis.call('HGET', KEYS[3], m)
`)

// portHomeScript: KEYS ports, nodes, info; ARGV port. It returns
// {holder, 1 and its heartbeat JSON} when a live node holds the port,
// {holder, 0} when a lost one does (its sessions are moving), {} when none.
var portHomeScript = redis.NewScript(nowMS + aliveFn + `
local m = redis.call('HGET', KEYS[1], ARGV[1])
if not m then return {} end
if not alive(KEYS[2], m) then return {m, 0} end
return {m, 1, redis.call('HGET', KEYS[3], m) or ''}
`)

// home returns the heartbeat of the live node holding the session's
// lease; ok is false when none does.
func (h *Homes) home(ctx context.Context, id int64) (info NodeInfo, ok bool, err error) {
	k := h.n.keys
	data, err := homeScript.Run(ctx, h.n.rdb, []string{k.lease(id), k.nodes(), k.info()}).Text()
	if errors.Is(err, redis.Nil) {
		return info, false, nil
	}
	if err != nil {
		return info, false, fmt.Errorf("find the home of session %d: %w", id, err)
	}
	if err := json.Unmarshal([]byte(data), &info); err != nil {
		return info, false, fmt.Errorf("find the home of session %d: bad heartbeat: %w", id, err)
	}
	return info, true, nil
}

// PortState says who serves a session port.
type PortState int

// Who serves a port.
const (
	PortFree   PortState = iota // no node: no session there
	PortHere                    // this node
	PortRemote                  // another live node, at Addr
	PortMoving                  // a lost node: its session is moving to another
)

// PortHome says which node serves the session on port, and its internal
// address when it is another live node.
func (h *Homes) PortHome(ctx context.Context, port int) (state PortState, addr string, err error) {
	k := h.n.keys
	res, err := portHomeScript.Run(ctx, h.n.rdb, []string{k.ports(), k.nodes(), k.info()}, strconv.Itoa(port)).Slice()
	if err != nil {
		return PortFree, "", fmt.Errorf("find the home of port %d: %w", port, err)
	}
	if len(res) == 0 {
		return PortFree, "", nil
	}
	if m, _ := res[0].(string); m == h.n.info.Member() {
		return PortHere, "", nil
	}
	if live, _ := res[1].(int64); live == 0 || len(res) < 3 {
		return PortMoving, "", nil
	}
	var info NodeInfo
	data, _ := res[2].(string)
	if err := json.Unmarshal([]byte(data), &info); err != nil || info.InternalAddr == "" {
		return PortMoving, "", nil
	}
	return PortRemote, info.InternalAddr, nil
}

// forwarded is what a node's internal listener takes and answers.
type forwarded struct {
	Session int64            `json:"session"`
	Request *session.Request `json:"request,omitempty"`
	Reply   *session.Reply   `json:"reply,omitempty"`
	Code    session.Code     `json:"code,omitempty"`
	Text    string           `json:"text,omitempty"`
}

// Forward runs req on the home node of session id, through its internal
// address. Its error, if any, has the public face the home gave it.
func (h *Homes) Forward(ctx context.Context, id int64, req *session.Request) (*session.Reply, error) {
	info, ok, err := h.home(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, session.ErrNoHome
	}
	if info.Member() == h.n.info.Member() {
		return nil, &session.Error{Code: session.CodeUnavailable, Text: "session is starting here, try again"}
	}
	h.forwarded.Add(1)
	return h.send(ctx, info, id, req)
}

// Place starts a new session on the least loaded live node (by the load
// of their last heartbeats, DefaultWeights; ties to the lowest id) when it
// is not this one. When the cluster cannot be read or that node does not
// take the connection, the session starts here: a start is never refused for placement.
func (h *Homes) Place(ctx context.Context, req *session.Request) (*session.Reply, bool, error) {
	nodes, err := Nodes(ctx, h.n.rdb, h.n.cfg.Name)
	if err != nil {
		h.n.log.Warn("placement: cannot list nodes; starting here", logKeyErr, err)
		return nil, false, nil
	}
	best, ok := LeastLoaded(nodes, DefaultWeights())
	if !ok || best.Member() == h.n.info.Member() {
		return nil, false, nil
	}
	h.placed.Add(1)
	reply, err := h.send(ctx, best, 0, req)
	if errors.Is(err, syscall.ECONNREFUSED) { // not sent: it cannot have started there
		h.n.log.Warn("placement: the least loaded node did not answer; starting here", logKeyNode, best.Member(), logKeyErr, err)
		return nil, false, nil
	}
	return reply, true, err
}

// send runs req on the node info describes.
func (h *Homes) send(ctx context.Context, info NodeInfo, id int64, req *session.Request) (*session.Reply, error) {
	body, err := json.Marshal(forwarded{Session: id, Request: req})
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+info.InternalAddr+ManagePath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Authorization", "Bearer "+h.secret)
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(hreq)
	if err != nil {
		return nil, &session.Error{Code: session.CodeUnavailable, Text: "session's node did not answer, try again",
			Err: fmt.Errorf("forward to node %s: %w", info.Member(), err)}
	}
	defer resp.Body.Close()
	var out forwarded
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		return nil, &session.Error{Code: session.CodeUnavailable, Text: "session's node did not answer, try again",
			Err: fmt.Errorf("forward to node %s: %s: %v", info.Member(), resp.Status, err)}
	}
	if out.Reply == nil {
		return nil, &session.Error{Code: out.Code, Text: out.Text}
	}
	return out.Reply, nil
}

// Manager runs session actions (session.Manager).
type Manager interface {
	Manage(ctx context.Context, req *session.Request) (*session.Reply, error)
}

// ManageHandler answers the actions other nodes forward (at ManagePath):
// it runs them here, never forwarding again (session.Here).
func ManageHandler(m Manager, secret string) http.Handler {
	return internalPOST(secret, func(w http.ResponseWriter, r *http.Request) {
		var in forwarded
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20)).Decode(&in); err != nil || in.Request == nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if in.Request.SessionID == 0 {
			in.Request.SessionID = in.Session
		}
		out := forwarded{Session: in.Session}
		reply, err := m.Manage(session.Here(r.Context()), in.Request)
		if err != nil {
			out.Code, out.Text = session.PublicError(err)
		} else {
			out.Reply = reply
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
}

// Secret returns the cluster's shared secret for calls between nodes,
// made by the first node that asks (128 random bits, kept in Redis: who
// can read Redis can read every session key anyway).
func Secret(ctx context.Context, rdb redis.UniversalClient, name string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	key := "{" + name + "}:secret"
	if err := rdb.SetNX(ctx, key, hex.EncodeToString(b), 0).Err(); err != nil {
		return "", fmt.Errorf("cluster secret: %w", err)
	}
	s, err := rdb.Get(ctx, key).Result()
	if err != nil {
		return "", fmt.Errorf("cluster secret: %w", err)
	}
	return s, nil
}

// Once reports whether this node is the first to ask for key within ttl
// (SET NX): what every node receives (OpenTera's RPC on a pub/sub
// channel) is then handled by exactly one.
func Once(ctx context.Context, rdb redis.UniversalClient, name, key string, ttl time.Duration) (bool, error) {
	return rdb.SetNX(ctx, "{"+name+"}:once:"+key, "1", ttl).Result()
}

// Home is PortHome in the gateway's terms (gateway.Homes): the internal
// address of the other live node serving port, or moving when a lost node
// held it; nothing when this node or no node does.
func (h *Homes) Home(ctx context.Context, port int) (addr string, moving bool, err error) {
	state, addr, err := h.PortHome(ctx, port)
	return addr, state == PortMoving, err
}

// internalPOST wraps a handler of the nodes' internal API: POST only, with
// the cluster's secret as a bearer token, compared in constant time.
func internalPOST(secret string, h http.HandlerFunc) http.Handler {
	want := []byte("Bearer " + secret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h(w, r)
	})
}
