package hub

import (
	"context"
	"fmt"
	"time"
)

// handle dispatches one client frame (house style convention 6: one small
// handler per message type). Refusals are answered with an error message;
// only the documented ones close the connection.
func (p *peer) handle(ctx context.Context, b []byte) {
	if p.closing.Load() {
		return // the connection is ending: nothing more from it counts
	}
	cfg := &p.hub.cfg
	if !p.budget.take(messageCost(len(b)), cfg.RateLimit, cfg.RateBurst, time.Now()) {
		p.log().Info("message budget exceeded, disconnecting")
		p.refuse(errRateLimited)
		return
	}
	m, err := decode(b)
	switch {
	case err != nil:
	case !p.joined && m.typ != typeJoin:
		err = errNotJoined
	case m.typ == typeJoin && !(p.joined && p.hub.cfg.Policy != nil):
		err = p.handleJoin(ctx, m)
	case p.hub.cfg.Policy != nil: // a later join too: the Policy's own
		err = p.handlePolicy(m)
	case m.typ == typeSignal:
		err = p.handleSignal(m)
	case m.typ == typeMessage:
		err = p.handleMessage(m)
	case isMediaType(m.rawType):
		err = p.handleMedia(b)
	default:
		err = errUnknownType
	}
	if err != nil {
		p.refuse(err)
	}
}

// refuse sends e to the client, closing the connection if e says so.
func (p *peer) refuse(e *clientError) {
	p.log().Debug("request refused", logKeyCode, e.Code)
	if e.Close != 0 {
		p.shutdown(endWithError(e)) // counted as a fault by shutdown
		return
	}
	p.hub.cfg.Counters.Errors.Add(1)
	if !p.enqueue(e.frame) {
		p.hub.evict([]*peer{p})
	}
}

func (p *peer) handleJoin(ctx context.Context, m inbound) *clientError {
	if p.joined {
		return errJoined
	}
	if len(m.key) == 0 {
		return errNoKey
	}
	p.greeted.Store(true) // the join deadline no longer applies
	h := p.hub
	id, err := p.admitting(ctx, func(ctx context.Context) (Identity, error) {
		return h.cfg.Admitter.Admit(ctx, string(m.key), string(m.uid))
	})
	if err == nil && !id.Role.valid() {
		err = fmt.Errorf("admitter returned invalid role %q", id.Role)
	}
	if err != nil {
		if p.closing.Load() || ctx.Err() != nil {
			return nil // the connection is ending anyway
		}
		h.cfg.Counters.JoinsRefused.Add(1)
		// The key is never logged; err comes from the Admitter.
		p.log().Info("join refused", logKeyUUID, string(m.uid), logKeyErr, err)
		return errUnauthorized
	}
	p.ident = id
	key := append([]byte(nil), m.key...) // m's bytes belong to the read buffer
	p.mint = func(pid string) string { return mintResume(key, id, pid, time.Now()) }
	p.info = PeerInfo{ID: p.resumedID(m.resume, key, id), Name: cleanName(m.name, id.Role), UUID: id.UUID, Role: id.Role}
	p.infoJSON = appendPeer(nil, p.info)
	if !h.join(p) {
		return nil // the hub or this connection closed meanwhile and told the client
	}
	p.joined = true
	h.admitted(p)
	h.cfg.Counters.Joins.Add(1)
	p.log().Info("peer joined", logKeyRole, id.Role, logKeyUUID, id.UUID, logKeyName, p.info.Name)
	if h.cfg.Observer != nil {
		h.cfg.Observer.PeerJoined(p.info)
	}
	if h.cfg.Policy != nil {
		// Policy state first, then the welcome: a client acting on its
		// welcome must find the Policy knowing it.
		h.cfg.Policy.Joined(Peer{p})
		p.release()
	}
	h.mediaAdd(p)
	return nil
}

// resumedID is the peer id a join's resume token keeps, or the
// connection's own new id when there is no token or it does not hold (the
// page then simply gets a new id, as without a token).
func (p *peer) resumedID(tok, key []byte, id Identity) string {
	if len(tok) == 0 {
		return p.id
	}
	now := time.Now()
	pid, nonce, ok := openResume(tok, key, id, now)
	if !ok || !p.hub.redeem(nonce, now) {
		p.log().Info("resume token refused; new peer id", logKeyUUID, id.UUID)
		return p.id
	}
	return pid
}

func (p *peer) handleSignal(m inbound) *clientError {
	if len(m.to) == 0 {
		return errNoTo
	}
	return p.hub.relay(p, m.to, signalFrame(p.info.ID, m.data))
}

func (p *peer) handleMessage(m inbound) *clientError {
	if len(m.topic) == 0 {
		return errNoTopic
	}
	if err := topicPolicy(m.topic, p.info.Role); err != nil {
		return err // refused, not delivered
	}
	frame := messageFrame(p.info.ID, m.topic, m.data)
	if len(m.to) == 0 {
		p.hub.broadcast(p, frame)
		return nil
	}
	return p.hub.relay(p, m.to, frame)
}
