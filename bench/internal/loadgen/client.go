package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Peer is one client of the rehabrtc session protocol (docs/protocol.md).
type Peer struct {
	*WS
	ID      string
	UUID    string
	welcome []byte // the welcome, decoded by Others when needed
}

// Others decodes the peers already there in the welcome.
func (p *Peer) Others() ([]PeerInfo, error) {
	var w struct {
		Peers []PeerInfo `json:"peers"`
	}
	err := json.Unmarshal(p.welcome, &w)
	return w.Peers, err
}

// PeerInfo is a peer as welcome and peer-joined describe it.
type PeerInfo struct {
	ID   string `json:"id"`
	UUID string `json:"uuid"`
	Role string `json:"role"`
}

// Join dials the session on port through addr (the gateway), sends join
// and waits for welcome. rbuf is the client's read buffer.
func Join(ctx context.Context, addr string, port int, key, uuid, name string, rbuf int) (*Peer, error) {
	ws, err := DialWS(ctx, addr, fmt.Sprintf("/websocket/%d/", port), rbuf)
	if err != nil {
		return nil, err
	}
	p := &Peer{WS: ws, UUID: uuid}
	join, _ := json.Marshal(map[string]string{"type": "join", "key": key, "uuid": uuid, "name": name})
	if err := ws.Send(join); err != nil {
		ws.CloseNow()
		return nil, err
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(10 * time.Second)
	}
	ws.ReadDeadline(dl)
	defer ws.ReadDeadline(time.Time{})
	for {
		m, err := ws.Read()
		if err != nil {
			ws.CloseNow()
			return nil, fmt.Errorf("join: %w", err)
		}
		switch MsgType(m) {
		case "welcome":
			// The server writes the peer's own id first; the peer list is
			// decoded only by those who need it (a welcome into a full
			// room is large, and the load generator has one CPU).
			p.ID = string(field(m, "id"))
			if p.ID == "" {
				ws.CloseNow()
				return nil, fmt.Errorf("welcome without id: %.200s", m)
			}
			p.welcome = bytes.Clone(m)
			return p, nil
		case "error":
			ws.CloseNow()
			return nil, fmt.Errorf("join refused: %s", m)
		}
	}
}

// MsgType extracts "type" of a server message. The server always writes
// it first; other layouts fall back to a JSON decode.
func MsgType(m []byte) string {
	const pre = `{"type":"`
	if bytes.HasPrefix(m, []byte(pre)) {
		if i := bytes.IndexByte(m[len(pre):], '"'); i >= 0 {
			return string(m[len(pre) : len(pre)+i])
		}
	}
	var v struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(m, &v)
	return v.Type
}

// isType is MsgType(m) == typ without allocating.
func isType(m []byte, typ string) bool {
	const pre = `{"type":"`
	return len(m) > len(pre)+len(typ) && string(m[:len(pre)]) == pre &&
		string(m[len(pre):len(pre)+len(typ)]) == typ && m[len(pre)+len(typ)] == '"'
}

// field extracts the raw value of "name" in a flat message (first match).
func field(m []byte, name string) []byte {
	k := []byte(`"` + name + `":`)
	i := bytes.Index(m, k)
	if i < 0 {
		return nil
	}
	v := m[i+len(k):]
	if len(v) > 0 && v[0] == '"' {
		if j := bytes.IndexByte(v[1:], '"'); j >= 0 {
			return v[1 : j+1]
		}
		return nil
	}
	j := bytes.IndexAny(v, ",}")
	if j < 0 {
		return v
	}
	return v[:j]
}

// tBase is added to timestamps so they always have 19 digits: the frame
// template can then be stamped in place, and JSON forbids leading zeros.
const tBase = 1_000_000_000_000_000_000

// stamp reads the send time "t" (ns since the run's clock base) of a
// benchmark payload.
func stamp(m []byte) (int64, bool) {
	i := bytes.Index(m, []byte(`"t":`))
	if i < 0 {
		return 0, false
	}
	v := m[i+4:]
	var t int64
	n := 0
	for n < len(v) && v[n] >= '0' && v[n] <= '9' && n < 19 {
		t = t*10 + int64(v[n]-'0')
		n++
	}
	if n != 19 {
		return 0, false
	}
	return t - tBase, true
}

// frameBuilder builds timestamped frames of a fixed size without allocating
// per frame: the frame template is made once and the timestamp is written
// into it in place.
type frameBuilder struct {
	tmpl []byte
	tOff int // offset of the 19-digit timestamp
}

// newFrameBuilder makes the template of frames of exactly size bytes (or
// the smallest possible, if size is too small). head and tail surround the
// data object, e.g. `{"type":"signal","to":"X","data":` and `}`.
func newFrameBuilder(size int, head, tail string) *frameBuilder {
	build := func(pad int) []byte {
		return fmt.Appendf(nil, `%s{"t":%d,"p":"%s"}%s`, head, int64(tBase), strings.Repeat("x", pad), tail)
	}
	frame := build(0)
	if extra := size - len(frame); extra > 0 {
		frame = build(extra)
	}
	return &frameBuilder{tmpl: frame, tOff: bytes.Index(frame, []byte(`"t":`)) + 4}
}

// frame copies the template into dst, stamped with t (ns since the base).
func (f *frameBuilder) frame(dst []byte, t int64) []byte {
	dst = append(dst[:0], f.tmpl...)
	t += tBase
	for i := f.tOff + 18; i >= f.tOff; i-- {
		dst[i] = byte('0' + t%10)
		t /= 10
	}
	return dst
}

// Read buffer sizes of benchmark clients: idle and churn clients only
// read small notices; flood receivers read bursts.
const (
	smallRBuf = 4 << 10
	floodRBuf = 64 << 10
)
