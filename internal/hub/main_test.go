package hub

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Keys of the fake admitter. Kind-level keys take the uuid from the join.
const (
	keyUser        = "k-user"
	keyParticipant = "k-participant"
	keyDevice      = "k-device"
	keyPersonal    = "k-alice" // personal token of participant "alice"
)

// keyAdmitter is a hand-written fake Admitter: a fixed table of keys.
type keyAdmitter struct{}

func (keyAdmitter) Admit(_ context.Context, key, uuid string) (Identity, error) {
	switch key {
	case keyUser:
		return Identity{Role: RoleUser, UUID: uuid}, nil
	case keyParticipant:
		return Identity{Role: RoleParticipant, UUID: uuid}, nil
	case keyDevice:
		return Identity{Role: RoleDevice, UUID: uuid}, nil
	case keyPersonal:
		return Identity{Role: RoleParticipant, UUID: "alice"}, nil
	}
	return Identity{}, errors.New("unknown key")
}

// env is one hub behind a real HTTP server on loopback.
type env struct {
	hub *Hub
	srv *httptest.Server

	mu         sync.Mutex
	base       context.Context // replaces the request context when set
	errs       []error         // what Serve returned, in order
	plainServe bool            // Accept then Serve, as a caller outside ServeHTTP does
}

func (e *env) setBaseContext(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.base = ctx
}

// envOption changes the test server before it starts.
type envOption func(*httptest.Server)

// smallSendBuffers gives the server's sockets a small fixed send buffer, so
// that a client that stops reading backs the hub up after kilobytes rather
// than megabytes.
func smallSendBuffers(srv *httptest.Server) { srv.Listener = smallBufListener{srv.Listener} }

// newEnv starts a hub behind a test server.
func newEnv(t testing.TB, cfg Config, opts ...envOption) *env {
	t.Helper()
	if cfg.Admitter == nil {
		cfg.Admitter = keyAdmitter{}
	}
	e := &env{hub: New(cfg)}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(e.serveHTTP))
	for _, o := range opts {
		o(e.srv)
	}
	e.srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := e.hub.Close(ctx, SessionEnded); err != nil {
			t.Errorf("hub.Close: %v", err)
		}
		e.srv.Close()
	})
	return e
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		err = c.(*net.TCPConn).SetWriteBuffer(64 << 10)
	}
	return c, err
}

func (e *env) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	e.mu.Lock()
	if e.base != nil {
		ctx = e.base
	}
	plain := e.plainServe
	e.mu.Unlock()
	if plain {
		c, err := e.hub.Accept(w, r)
		if err != nil {
			return
		}
		err = e.hub.Serve(ctx, c)
		e.mu.Lock()
		e.errs = append(e.errs, err)
		e.mu.Unlock()
		return
	}
	// What ServeHTTP does, keeping Serve's result for the tests.
	c, cork, err := e.hub.upgrade(w, r, nil)
	if err != nil {
		return
	}
	err = e.hub.serve(ctx, c, e.hub.clientKey(r), cork)
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
}

func (e *env) serveErrs() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.errs...)
}

// client is a test client: a real coder/websocket connection.
type client struct {
	t  testing.TB
	c  *websocket.Conn
	id string
}

func (e *env) dial(t testing.TB) *client {
	t.Helper()
	return dialURL(t, e.srv, "/")
}

func dialURL(t testing.TB, srv *httptest.Server, path string) *client {
	t.Helper()
	return dialWith(t, srv, path, srv.Client())
}

// dialSmall dials with a small, fixed socket receive buffer, so that a
// client that stops reading backs the server up quickly.
func (e *env) dialSmall(t testing.TB) *client {
	t.Helper()
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(64 << 10)
		}
		return c, err
	}
	t.Cleanup(tr.CloseIdleConnections)
	return dialWith(t, e.srv, "/", &http.Client{Transport: tr})
}

func dialWith(t testing.TB, srv *httptest.Server, path string, hc *http.Client) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+path,
		&websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(1 << 20)
	cl := &client{t: t, c: c}
	t.Cleanup(func() { _ = c.CloseNow() })
	return cl
}

// join dials, joins with key as uuid/name and returns after the welcome.
func (e *env) join(t testing.TB, key, uuid, name string) (*client, map[string]any) {
	t.Helper()
	cl := e.dial(t)
	cl.send(map[string]any{"type": "join", "key": key, "uuid": uuid, "name": name})
	w := cl.expect("welcome")
	cl.id = w["id"].(string)
	return cl, w
}

func (cl *client) send(v any) {
	cl.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.sendRaw(string(b))
}

func (cl *client) sendRaw(s string) {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		cl.t.Fatalf("write: %v", err)
	}
}

// readRaw returns the next text frame.
func (cl *client) readRaw() []byte {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := cl.c.Read(ctx)
	if err != nil {
		cl.t.Fatalf("read: %v", err)
	}
	return b
}

func (cl *client) read() map[string]any {
	cl.t.Helper()
	b := cl.readRaw()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		cl.t.Fatalf("server sent invalid JSON %q: %v", b, err)
	}
	return m
}

// expect reads the next message and checks its type.
func (cl *client) expect(typ string) map[string]any {
	cl.t.Helper()
	m := cl.read()
	if m["type"] != typ {
		cl.t.Fatalf("got %v, want type %q", m, typ)
	}
	return m
}

// expectError reads the next message and checks it is an error with code.
func (cl *client) expectError(code string) {
	cl.t.Helper()
	m := cl.expect("error")
	if m["code"] != code || m["message"] == "" {
		cl.t.Fatalf("got error %v, want code %q", m, code)
	}
}

// expectClose reads until the connection ends and checks the close code.
func (cl *client) expectClose(code websocket.StatusCode) {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := cl.c.Read(ctx)
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != code { // -1: closed without a close frame
			cl.t.Fatalf("closed with %v (%v), want %v; last frame %.80q", got, err, code, b)
		}
		return
	}
}

// roundTrip proves the connection is open and everything the server sent
// before has been read: it signals itself and reads until that arrives.
func (cl *client) roundTrip() {
	cl.t.Helper()
	cl.send(map[string]any{"type": "signal", "to": cl.id, "data": "ping-self"})
	m := cl.expect("signal")
	if m["data"] != "ping-self" {
		cl.t.Fatalf("got %v, want own ping", m)
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
