package hub

import (
	"encoding/json"
	"time"
)

// minICERenewal keeps renewals apart even when a provider hands out
// credentials that are (nearly) expired.
const minICERenewal = time.Second

// iceServers returns the ICE servers for the joining peer p and schedules
// their renewal.
func (p *peer) iceServers() json.RawMessage {
	cfg := &p.hub.cfg
	if cfg.ICE == nil {
		return cfg.ICEServers
	}
	servers, exp := cfg.ICE.ICEServers(p.ident)
	if !json.Valid(servers) {
		p.log().Error("ICE provider returned invalid JSON; sending []")
		servers, exp = json.RawMessage("[]"), time.Time{}
	}
	p.iceDue.Store(renewalTime(time.Now(), exp))
	return servers
}

// renewalTime is when servers expiring at exp are renewed: after half the
// time left (0 for never), so that with credentials of a minute or more a
// renewal is sent before they expire despite the heartbeat's granularity.
func renewalTime(now, exp time.Time) int64 {
	if exp.IsZero() {
		return 0
	}
	return now.Add(max(exp.Sub(now)/2, minICERenewal)).UnixNano()
}

// renewICE queues new ICE servers for p if they are due. The writer calls
// it on each ping tick (every PingInterval), so a renewal may come up to
// one interval late; the half-life margin covers that.
func (p *peer) renewICE() {
	due := p.iceDue.Load()
	if due == 0 || time.Now().UnixNano() < due { // set after p.ident, at join
		return
	}
	servers, exp := p.hub.cfg.ICE.ICEServers(p.ident)
	if !json.Valid(servers) {
		return
	}
	p.iceDue.Store(renewalTime(time.Now(), exp))
	if !p.enqueue(iceServersFrame(servers)) {
		p.hub.evict([]*peer{p})
	}
}
