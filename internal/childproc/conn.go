package childproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Msg is one line of the control protocol (see the package documentation).
type Msg struct {
	Op      string          `json:"op"`
	ID      uint64          `json:"id,omitempty"`
	Key     string          `json:"key,omitempty"`
	UUID    string          `json:"uuid,omitempty"`
	Kind    session.Kind    `json:"kind,omitempty"`
	OK      bool            `json:"ok,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Peers   []session.Peer  `json:"peers,omitempty"`
	Session string          `json:"session_uuid,omitempty"`
	ICE     json.RawMessage `json:"ice_servers,omitempty"`
	Expires int64           `json:"expires,omitempty"`  // unix seconds: when the reply's ICE credentials expire
	PeerICE bool            `json:"peer_ice,omitempty"` // init: ask the parent for each peer's ICE servers
	Policy  string          `json:"policy,omitempty"`   // init: the ICE transport policy of the pages
}

// The operations of the control protocol.
const (
	opInit  = "init"
	opReady = "ready"
	opAdmit = "admit"
	opValid = "valid"
	opReply = "reply"
	opPeers = "peers"
	opKick  = "kick"
	opStop  = "stop"
	opICE   = "ice"
)

const (
	maxLine      = 1 << 20         // longest control line (a peers list)
	writeTimeout = 2 * time.Second // a control write never blocks longer
)

var errConnClosed = errors.New("control channel closed")

// conn is one end of the control channel: writes from any goroutine, one
// reader (run), and calls matched to their replies by id.
type conn struct {
	c net.Conn

	wmu sync.Mutex // serializes writes

	mu      sync.Mutex // guards the fields below
	next    uint64
	pending map[uint64]chan Msg
	closed  chan struct{} // closed when run returns
}

func newConn(c net.Conn) *conn {
	return &conn{c: c, pending: map[uint64]chan Msg{}, closed: make(chan struct{})}
}

// ControlFromFD opens the control channel a child inherited as fd.
func ControlFromFD(fd uintptr) (net.Conn, error) {
	f := os.NewFile(fd, "control")
	if f == nil {
		return nil, fmt.Errorf("no file descriptor %d", fd)
	}
	defer f.Close() // FileConn holds its own duplicate
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("file descriptor %d is not a control socket: %w", fd, err)
	}
	return c, nil
}

// send writes one message.
func (c *conn) send(m Msg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = c.c.Write(append(b, '\n'))
	return err
}

// call sends m with a fresh id and waits for its reply.
func (c *conn) call(ctx context.Context, m Msg) (Msg, error) {
	ch := make(chan Msg, 1)
	c.mu.Lock()
	c.next++
	m.ID = c.next
	c.pending[m.ID] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, m.ID)
		c.mu.Unlock()
	}()
	if err := c.send(m); err != nil {
		return Msg{}, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-c.closed:
		return Msg{}, errConnClosed
	case <-ctx.Done():
		return Msg{}, ctx.Err()
	}
}

// run reads messages until the channel closes, delivering replies to their
// calls and everything else to handle, in order, in this goroutine.
func (c *conn) run(handle func(Msg)) error {
	defer close(c.closed)
	sc := bufio.NewScanner(c.c)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for sc.Scan() {
		var m Msg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue // a stray line is ignored, never fatal
		}
		if m.Op == opReply {
			c.deliver(m)
			continue
		}
		handle(m)
	}
	return sc.Err()
}

func (c *conn) deliver(m Msg) {
	c.mu.Lock()
	ch := c.pending[m.ID]
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- m:
		default: // a duplicate reply
		}
	}
}

// close ends the channel; run then returns.
func (c *conn) close() error { return c.c.Close() }
