package socketio

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testEnv is a Server behind a real HTTP server, with raw clients.
type testEnv struct {
	t   *testing.T
	srv *Server
	ts  *httptest.Server
}

func newTestEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	srv := NewServer(opts)
	ts := httptest.NewServer(srv)
	env := &testEnv{t: t, srv: srv, ts: ts}
	t.Cleanup(func() {
		// Close the Server first: it ends pending polls, which ts.Close waits for.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		ts.Close()
	})
	return env
}

func (e *testEnv) url(query string) string {
	return e.ts.URL + "/socket.io/?EIO=4&" + query
}

// do sends one HTTP request and returns status and body.
func (e *testEnv) do(method, url, body string) (int, string) {
	return e.doCtx(context.Background(), method, url, body)
}

func (e *testEnv) doCtx(ctx context.Context, method, url, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ""
		}
		e.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// openPolling performs the polling handshake and returns the session id.
func (e *testEnv) openPolling() string {
	e.t.Helper()
	status, body := e.do("GET", e.url("transport=polling"), "")
	if status != 200 || !strings.HasPrefix(body, "0") {
		e.t.Fatalf("handshake: %d %q", status, body)
	}
	var hs handshake
	if err := json.Unmarshal([]byte(body[1:]), &hs); err != nil {
		e.t.Fatal(err)
	}
	return hs.SID
}

func (e *testEnv) get(sid string) (int, string) {
	return e.do("GET", e.url("transport=polling&sid="+sid), "")
}

func (e *testEnv) post(sid, body string) (int, string) {
	return e.do("POST", e.url("transport=polling&sid="+sid), body)
}

// mustPost sends a polling payload that must be accepted.
func (e *testEnv) mustPost(sid, body string) {
	e.t.Helper()
	if status, got := e.post(sid, body); status != 200 || got != "ok" {
		e.t.Fatalf("POST %q: %d %q", body, status, got)
	}
}

// mustGet polls and expects exactly want.
func (e *testEnv) mustGet(sid, want string) {
	e.t.Helper()
	if status, got := e.get(sid); status != 200 || got != want {
		e.t.Fatalf("GET: %d %q, want 200 %q", status, got, want)
	}
}

// asyncGet starts a poll and returns its result channel, once the server
// holds it as pending.
func (e *testEnv) asyncGet(sid string) <-chan [2]any {
	e.t.Helper()
	ch := make(chan [2]any, 1)
	go func() {
		status, body := e.get(sid)
		ch <- [2]any{status, body}
	}()
	c := e.srv.lookup(sid)
	waitFor(e.t, "pending poll", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.polling
	})
	return ch
}

// dial opens a raw WebSocket to the server.
func (e *testEnv) dial(query string) *wsClient {
	e.t.Helper()
	ws, resp, err := e.dialErr(query)
	if err != nil {
		e.t.Fatalf("dial %s: %v (%v)", query, err, resp)
	}
	return ws
}

func (e *testEnv) dialErr(query string) (*wsClient, *http.Response, error) {
	u := "ws" + strings.TrimPrefix(e.url(query), "http")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: e.ts.Client()})
	if err != nil {
		return nil, resp, err
	}
	c := &wsClient{t: e.t, ws: ws}
	e.t.Cleanup(func() { _ = ws.CloseNow() })
	return c, resp, nil
}

// wsClient is a raw Engine.IO WebSocket client.
type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func (c *wsClient) send(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// read returns the next text frame, or fails.
func (c *wsClient) read() string {
	c.t.Helper()
	s, err := c.readErr()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return s
}

func (c *wsClient) readErr() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	return string(b), err
}

func (c *wsClient) expect(want string) {
	c.t.Helper()
	if got := c.read(); got != want {
		c.t.Fatalf("read %q, want %q", got, want)
	}
}

// expectClosed waits until the server closes the WebSocket.
func (c *wsClient) expectClosed() {
	c.t.Helper()
	for {
		s, err := c.readErr()
		if err != nil {
			if errors := err.Error(); strings.Contains(errors, "deadline") {
				c.t.Fatalf("WebSocket still open: %v", err)
			}
			return
		}
		c.t.Logf("read %q before close", s)
	}
}

// openWS opens a WebSocket-only session and returns the client and sid.
func (e *testEnv) openWS() (*wsClient, string) {
	e.t.Helper()
	c := e.dial("transport=websocket")
	msg := c.read()
	var hs handshake
	if !strings.HasPrefix(msg, "0") || json.Unmarshal([]byte(msg[1:]), &hs) != nil {
		e.t.Fatalf("open packet %q", msg)
	}
	return c, hs.SID
}

// connectNS joins namespace over c and returns the socket id.
func (c *wsClient) connectNS(prefix string) string {
	c.t.Helper()
	c.send("40" + prefix)
	msg := c.read()
	if !strings.HasPrefix(msg, "40"+prefix+`{"sid":"`) {
		c.t.Fatalf("connect reply %q", msg)
	}
	return strings.TrimSuffix(strings.TrimPrefix(msg, "40"+prefix+`{"sid":"`), `"}`)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recorder collects what the server's callbacks see, for assertions.
type recorder struct {
	mu      sync.Mutex
	sockets []*Socket
	reasons map[string]string // socket id → disconnect reason
	events  []string          // "<namespace> <event> <args JSON>"
}

func newRecorder() *recorder { return &recorder{reasons: make(map[string]string)} }

func (r *recorder) add(s *Socket) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sockets = append(r.sockets, s)
}

func (r *recorder) socket(t *testing.T, i int) *Socket {
	t.Helper()
	waitFor(t, "socket", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.sockets) > i
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sockets[i]
}

func (r *recorder) disconnected(s *Socket, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reasons[s.ID()] = reason
}

func (r *recorder) reason(t *testing.T, s *Socket) string {
	t.Helper()
	var reason string
	waitFor(t, "disconnect of "+s.ID(), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		reason = r.reasons[s.ID()]
		return reason != ""
	})
	return reason
}

func (r *recorder) event(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
}

func (r *recorder) waitEvents(t *testing.T, n int) []string {
	t.Helper()
	waitFor(t, "events", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.events) >= n
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// newUnclosedServer serves srv for a test that closes srv itself.
func newUnclosedServer(t *testing.T, srv *Server) *httptest.Server {
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}
