package ehrc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// party is a test client of one namespace, on either transport.
type party interface {
	ID() string
	// emit sends an event without waiting.
	emit(event string, payload any)
	// call sends an event and returns its outcome (nil or the refusal); the
	// next frame must be that outcome, so nothing else arrived before it.
	call(event string, payload any) *Error
	// expect reads the next event, which must be event, and returns its payload.
	expect(event string) map[string]any
	// from is the sender id a native client sees ("" on Socket.IO).
	lastFrom() string
	close()
}

// frame is one event a test client received.
type frame struct {
	event string
	data  json.RawMessage
	from  string
}

// inbox collects frames from a reader goroutine.
type inbox struct {
	t      *testing.T
	frames chan frame
	done   chan struct{} // the reader has returned
	closed chan struct{} // the connection ended
	from   string
}

func newInbox(t *testing.T) *inbox {
	return &inbox{t: t, frames: make(chan frame, 256), done: make(chan struct{}), closed: make(chan struct{})}
}

func (in *inbox) next() frame {
	in.t.Helper()
	select {
	case f := <-in.frames:
		return f
	case <-time.After(5 * time.Second):
		in.t.Fatalf("no event within 5 s")
	}
	return frame{}
}

func (in *inbox) expect(event string) map[string]any {
	in.t.Helper()
	f := in.next()
	if f.event != event {
		in.t.Fatalf("got event %q %s, want %q", f.event, f.data, event)
	}
	in.from = f.from
	var m map[string]any
	_ = json.Unmarshal(f.data, &m)
	return m
}

func (in *inbox) lastFrom() string { return in.from }

// waitClosed waits until the server has ended the connection.
func (in *inbox) waitClosed() {
	in.t.Helper()
	select {
	case <-in.closed:
	case <-time.After(5 * time.Second):
		in.t.Fatal("connection still open after 5 s")
	}
}

// sioClient is a minimal Socket.IO v5 client over the WebSocket transport.
type sioClient struct {
	*inbox
	ws      *websocket.Conn
	nsp     string
	id      string
	mu      sync.Mutex
	nextAck int
}

// dialSIO connects to namespace ns with an optional doctor token. It
// returns the client after CONNECT, or the CONNECT_ERROR message.
func (e *testEnv) dialSIO(ns, token string) (*sioClient, string) {
	e.t.Helper()
	return e.dialSIOFrom(ns, token, nil)
}

// dialSIOFrom is dialSIO with handshake headers (Origin, X-Test-Client).
func (e *testEnv) dialSIOFrom(ns, token string, h http.Header) (*sioClient, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.wsURL("/socket.io/?EIO=4&transport=websocket"), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		e.t.Fatalf("dial socket.io: %v", err)
	}
	c := &sioClient{inbox: newInbox(e.t), ws: ws, nsp: "/" + ns}
	if _, open, err := ws.Read(ctx); err != nil || open[0] != '0' {
		e.t.Fatalf("no open packet: %q %v", open, err)
	}
	auth := ""
	if token != "" {
		b, _ := json.Marshal(map[string]string{"token": token})
		auth = string(b)
	}
	c.write("40" + c.nsp + "," + auth)
	_, b, err := ws.Read(ctx)
	if err != nil {
		e.t.Fatalf("no CONNECT answer: %v", err)
	}
	body := strings.TrimPrefix(string(b), "4"+string(b[1])+c.nsp+",")
	if b[1] == '4' {
		var ce struct{ Message string }
		_ = json.Unmarshal([]byte(body), &ce)
		_ = ws.CloseNow()
		return nil, ce.Message
	}
	var ok struct{ SID string }
	_ = json.Unmarshal([]byte(body), &ok)
	c.id = ok.SID
	go c.read()
	e.t.Cleanup(c.close)
	return c, ""
}

func (c *sioClient) ID() string { return c.id }

func (c *sioClient) write(s string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.ws.Write(ctx, websocket.MessageText, []byte(s))
}

// read turns packets into frames; events are "name", acks "ack:<id>",
// DISCONNECT "disconnect".
func (c *sioClient) read() {
	defer close(c.done)
	defer close(c.closed)
	prefix := c.nsp + ","
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		s := string(b)
		switch {
		case s == "2":
			c.write("3")
		case strings.HasPrefix(s, "42"+prefix):
			var arr []json.RawMessage
			_ = json.Unmarshal([]byte(strings.TrimPrefix(s, "42"+prefix)), &arr)
			var name string
			_ = json.Unmarshal(arr[0], &name)
			var data json.RawMessage
			if len(arr) > 1 {
				data = arr[1]
			}
			c.frames <- frame{event: name, data: data}
		case strings.HasPrefix(s, "43"+prefix):
			rest := strings.TrimPrefix(s, "43"+prefix)
			i := strings.IndexByte(rest, '[')
			var arr []json.RawMessage
			_ = json.Unmarshal([]byte(rest[i:]), &arr)
			c.frames <- frame{event: "ack:" + rest[:i], data: arr[0]}
		case strings.HasPrefix(s, "41"+prefix):
			c.frames <- frame{event: "disconnect"}
		}
	}
}

func (c *sioClient) emit(event string, payload any) {
	c.send(event, payload, "")
}

func (c *sioClient) send(event string, payload any, ack string) {
	c.t.Helper()
	args := []any{event}
	if payload != nil {
		args = append(args, payload)
	}
	b, err := json.Marshal(args)
	if err != nil {
		c.t.Fatal(err)
	}
	c.write("42" + c.nsp + "," + ack + string(b))
}

func (c *sioClient) call(event string, payload any) *Error {
	c.t.Helper()
	c.mu.Lock()
	id := strconv.Itoa(c.nextAck)
	c.nextAck++
	c.mu.Unlock()
	c.send(event, payload, id)
	f := c.next()
	if f.event != "ack:"+id {
		c.t.Fatalf("%s: got %q %s before the ack", event, f.event, f.data)
	}
	if string(f.data) == "null" {
		return nil
	}
	var e Error
	_ = json.Unmarshal(f.data, &e)
	c.expect("error") // the refusal is also emitted
	return &e
}

func (c *sioClient) close() {
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

// nativeClient speaks the hub protocol to /ehrc/ws/<ns>.
type nativeClient struct {
	*inbox
	ws      *websocket.Conn
	id      string
	welcome map[string]any
	code    websocket.StatusCode // close code, once closed
}

// dialNative joins namespace ns with key; it returns the client after
// welcome, or nil and the error frame's code.
func (e *testEnv) dialNative(ns, key string) (*nativeClient, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.wsURL(NativePrefix+ns), nil)
	if err != nil {
		e.t.Fatalf("dial native: %v", err)
	}
	c := &nativeClient{inbox: newInbox(e.t), ws: ws}
	b, _ := json.Marshal(map[string]string{"type": "join", "key": key})
	_ = ws.Write(ctx, websocket.MessageText, b)
	_, b, err = ws.Read(ctx)
	if err != nil {
		e.t.Fatalf("no welcome: %v", err)
	}
	_ = json.Unmarshal(b, &c.welcome)
	if c.welcome["type"] != "welcome" {
		_ = ws.CloseNow()
		return nil, fmt.Sprint(c.welcome["code"])
	}
	c.id = c.welcome["id"].(string)
	go c.read()
	e.t.Cleanup(c.close)
	return c, ""
}

func (c *nativeClient) ID() string { return c.id }

func (c *nativeClient) read() {
	defer close(c.done)
	defer close(c.closed)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.code = websocket.CloseStatus(err)
			return
		}
		var m struct {
			Type, From, Code, Message string
			Data                      json.RawMessage
		}
		_ = json.Unmarshal(b, &m)
		if m.Type == "error" {
			m.Data, _ = json.Marshal(Error{Code: m.Code, Message: m.Message})
		}
		c.frames <- frame{event: m.Type, data: m.Data, from: m.From}
	}
}

func (c *nativeClient) emit(event string, payload any) {
	c.t.Helper()
	b, err := json.Marshal(map[string]any{"type": event, "data": payload})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.ws.Write(ctx, websocket.MessageText, b)
}

// call follows the event with a probe of an unknown type: its
// unknown-type error marks the end of the event's outcome.
func (c *nativeClient) call(event string, payload any) *Error {
	c.t.Helper()
	c.emit(event, payload)
	c.emit("x-probe", nil)
	var out *Error
	for {
		f := c.next()
		if f.event != "error" {
			c.t.Fatalf("%s: got %q %s before its outcome", event, f.event, f.data)
		}
		var e Error
		_ = json.Unmarshal(f.data, &e)
		if e == *errUnknownEvent {
			return out
		}
		out = &e
	}
}

func (c *nativeClient) close() {
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
}
