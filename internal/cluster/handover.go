package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// ClaimPath is where a node's internal listener takes a session that a
// draining node hands over: it claims the session at once.
const ClaimPath = "/internal/v1/claim"

// Claimer claims one session whose home was just released (session.Manager).
type Claimer interface {
	ClaimSession(ctx context.Context, id int64) (bool, error)
}

type claimRequest struct {
	Session int64 `json:"session"`
}

type claimReply struct {
	Claimed bool `json:"claimed"`
}

// ClaimHandler answers hand-overs (at ClaimPath) with the cluster's secret:
// it claims the session here, as the claim loop would at its next turn.
func ClaimHandler(m Claimer, secret string) http.Handler {
	return internalPOST(secret, func(w http.ResponseWriter, r *http.Request) {
		var in claimRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&in); err != nil || in.Session <= 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		// Not the request's context: a claim cut short half way (the
		// draining node gave up waiting) would end the session.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), forwardTimeout)
		defer cancel()
		ok, err := m.ClaimSession(ctx, in.Session)
		if err != nil {
			http.Error(w, "cannot claim the session", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(claimReply{Claimed: ok})
	})
}

// Handover hands the sessions of a draining node to the others, each to
// the least loaded one, counting the sessions it has already handed to
// each (their heartbeats do not show them yet).
type Handover struct {
	h     *Homes
	mu    sync.Mutex // guards nodes
	nodes []NodeInfo // the other live nodes, their loads raised by what they were handed
}

// ErrNoOtherNode: nobody to hand a session to; it stays recorded as
// running and comes back when a node claims it.
var ErrNoOtherNode = errors.New("no other live node to hand the session to")

// Handover lists the other live nodes, for a drain.
func (h *Homes) Handover(ctx context.Context) (*Handover, error) {
	nodes, err := Nodes(ctx, h.n.rdb, h.n.cfg.Name)
	if err != nil {
		return nil, err
	}
	others := nodes[:0]
	for _, n := range nodes {
		if n.ID != h.n.cfg.NodeID { // nor an older incarnation of this node
			others = append(others, n)
		}
	}
	return &Handover{h: h, nodes: others}, nil
}

// pick chooses the node for one more session and counts it there.
func (d *Handover) pick() (NodeInfo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	best, ok := LeastLoaded(d.nodes, DefaultWeights())
	if !ok {
		return NodeInfo{}, false
	}
	for i := range d.nodes {
		if d.nodes[i].Member() == best.Member() {
			d.nodes[i].Load.Sessions++
		}
	}
	return best, true
}

// To asks the least loaded other node to claim session id now. The
// caller must have stopped serving it and released its lease.
func (d *Handover) To(ctx context.Context, id int64) (NodeInfo, error) {
	to, ok := d.pick()
	if !ok {
		return NodeInfo{}, ErrNoOtherNode
	}
	body, _ := json.Marshal(claimRequest{Session: id})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+to.InternalAddr+ClaimPath, bytes.NewReader(body))
	if err != nil {
		return to, err
	}
	req.Header.Set("Authorization", "Bearer "+d.h.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.h.client.Do(req)
	if err != nil {
		return to, fmt.Errorf("hand session %d to node %s: %w", id, to.Member(), err)
	}
	defer resp.Body.Close()
	var out claimReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		return to, fmt.Errorf("hand session %d to node %s: %s", id, to.Member(), resp.Status)
	}
	if !out.Claimed {
		return to, fmt.Errorf("hand session %d to node %s: not claimed (another node holds it, or it ended)", id, to.Member())
	}
	return to, nil
}

// DrainPath is where a node's internal listener takes a request to drain
// (`rehabrtc cluster drain`): it hands its sessions to the others and exits,
// as on SIGTERM.
const DrainPath = "/internal/v1/drain"

// DrainHandler answers drain requests (at DrainPath) with the cluster's
// secret by calling drain, which must return at once (the drain runs in
// the node's own shutdown).
func DrainHandler(drain func(), secret string) http.Handler {
	return internalPOST(secret, func(w http.ResponseWriter, r *http.Request) {
		drain()
		w.WriteHeader(http.StatusAccepted)
	})
}

// RequestDrain asks node to drain, with the cluster's secret.
func RequestDrain(ctx context.Context, node NodeInfo, secret string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+node.InternalAddr+DrainPath, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := (&http.Client{Timeout: forwardTimeout}).Do(req)
	if err != nil {
		return fmt.Errorf("ask node %s to drain: %w", node.Member(), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("ask node %s to drain: %s", node.Member(), resp.Status)
	}
	return nil
}
