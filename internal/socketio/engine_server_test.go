package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testOptions is a small application used by the server tests.
func testOptions(rec *recorder) Options {
	return Options{
		Authorize: func(r *http.Request, nsp string, auth json.RawMessage) (any, error) {
			rec.event(fmt.Sprintf("auth %s %s", nsp, auth))
			switch {
			case nsp == "/" || nsp == "/doc" || strings.HasPrefix(nsp, "/n"):
				return "data:" + nsp, nil
			case nsp == "/forbidden":
				return nil, &ConnectError{Message: "Doctor not available", Data: map[string]int{"code": 42}}
			case nsp == "/secret":
				return nil, fmt.Errorf("database is down")
			}
			return nil, ErrInvalidNamespace
		},
		OnConnect: func(s *Socket) {
			rec.add(s)
			s.OnDisconnect(func(reason string) { rec.disconnected(s, reason) })
			s.On("echo", func(args []json.RawMessage, ack AckFunc) {
				_ = s.Emit("echo", rawArgs(args)...)
			})
			s.On("ask", func(args []json.RawMessage, ack AckFunc) {
				_ = ack(rawArgs(args)...)
			})
			s.On("record", func(args []json.RawMessage, ack AckFunc) {
				b, _ := json.Marshal(args)
				rec.event(fmt.Sprintf("%s record %s", s.Namespace(), b))
			})
			s.On("panic", func([]json.RawMessage, AckFunc) { panic("boom") })
			s.On("bye", func([]json.RawMessage, AckFunc) { s.Disconnect() })
		},
	}
}

func rawArgs(args []json.RawMessage) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a
	}
	return out
}

var sidPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{20}$`)

func TestPollingHandshake(t *testing.T) {
	env := newTestEnv(t, Options{})
	resp, err := env.ts.Client().Get(env.url("transport=polling&t=N8hyd6w"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
		t.Errorf("Content-Type %q", ct)
	}
	status, body := env.do("GET", env.url("transport=polling"), "")
	want := regexp.MustCompile(`^0\{"sid":"([A-Za-z0-9_-]{20})","upgrades":\["websocket"\],` +
		`"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000\}$`)
	if status != 200 || !want.MatchString(body) {
		t.Fatalf("handshake %d %q", status, body)
	}
}

func TestEngineErrors(t *testing.T) {
	env := newTestEnv(t, Options{})
	sid := env.openPolling()
	tests := []struct {
		name, method, query string
		status              int
		body                string
	}{
		{"no EIO", "GET", "transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO 3", "GET", "EIO=3&transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO abc", "GET", "EIO=abc&transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"no transport", "GET", "EIO=4", 400, `{"code":0,"message":"Transport unknown"}`},
		{"bad transport", "GET", "EIO=4&transport=abc", 400, `{"code":0,"message":"Transport unknown"}`},
		{"POST handshake", "POST", "EIO=4&transport=polling", 400, `{"code":2,"message":"Bad handshake method"}`},
		{"PUT handshake", "PUT", "EIO=4&transport=polling", 400, `{"code":2,"message":"Bad handshake method"}`},
		{"unknown sid GET", "GET", "EIO=4&transport=polling&sid=nope", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"unknown sid POST", "POST", "EIO=4&transport=polling&sid=nope", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"PUT with sid", "PUT", "EIO=4&transport=polling&sid=" + sid, 400, `{"code":3,"message":"Bad request"}`},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", 400, `{"code":3,"message":"Bad request"}`},
		{"OPTIONS", "OPTIONS", "EIO=4&transport=polling", 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := env.do(tt.method, env.ts.URL+"/socket.io/?"+tt.query, "")
			if status != tt.status || body != tt.body {
				t.Fatalf("%d %q, want %d %q", status, body, tt.status, tt.body)
			}
		})
	}
	t.Run("other path", func(t *testing.T) {
		if status, _ := env.do("GET", env.ts.URL+"/engine.io/?EIO=4&transport=polling", ""); status != 404 {
			t.Fatalf("status %d, want 404", status)
		}
	})
	t.Run("websocket EIO 3", func(t *testing.T) {
		u := "ws" + strings.TrimPrefix(env.ts.URL, "http") + "/socket.io/?EIO=3&transport=websocket"
		_, resp, err := websocket.Dial(context.Background(), u, &websocket.DialOptions{HTTPClient: env.ts.Client()})
		if err == nil || resp == nil || resp.StatusCode != 400 {
			t.Fatalf("dial: %v %v, want 400", err, resp)
		}
	})
	t.Run("websocket unknown sid", func(t *testing.T) {
		_, resp, err := env.dialErr("transport=websocket&sid=nope")
		if err == nil || resp == nil || resp.StatusCode != 400 {
			t.Fatalf("dial: %v %v, want 400", err, resp)
		}
	})
}

func TestPollingMessages(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	sid := env.openPolling()
	env.mustPost(sid, "40")
	status, body := env.get(sid)
	if status != 200 || !regexp.MustCompile(`^40\{"sid":"[A-Za-z0-9_-]{20}"\}$`).MatchString(body) {
		t.Fatalf("connect reply %d %q", status, body)
	}
	// Two packets in one POST; their answers may take one poll or two.
	env.mustPost(sid, "42[\"echo\",1]\x1e42[\"echo\",{\"a\":[true]}]")
	var got []string
	for len(got) < 2 {
		status, body := env.get(sid)
		if status != 200 {
			t.Fatalf("GET %d %q", status, body)
		}
		got = append(got, strings.Split(body, "\x1e")...)
	}
	if want := []string{`42["echo",1]`, `42["echo",{"a":[true]}]`}; !slices.Equal(got, want) {
		t.Fatalf("polled %q, want %q", got, want)
	}
	// Packets queued while no poll is pending come back joined in one poll.
	s := rec.socket(t, 0)
	_ = s.Emit("a", 1)
	_ = s.Emit("b")
	env.mustGet(sid, "42[\"a\",1]\x1e42[\"b\"]")
	// A pending poll is answered as soon as something is queued.
	pending := env.asyncGet(sid)
	env.mustPost(sid, `421["ask","x"]`)
	if got := <-pending; got != [2]any{200, `431["x"]`} {
		t.Fatalf("pending poll %v", got)
	}
}

func TestPollingDuplicateGet(t *testing.T) {
	env := newTestEnv(t, Options{})
	sid := env.openPolling()
	first := env.asyncGet(sid)
	if status, body := env.get(sid); status != 400 || body != `{"code":3,"message":"Bad request"}` {
		t.Fatalf("second GET %d %q", status, body)
	}
	if got := <-first; got != [2]any{200, "1"} {
		t.Fatalf("first GET %v, want the close packet", got)
	}
	waitClosed(t, env, sid)
}

func TestPollingDuplicatePost(t *testing.T) {
	env := newTestEnv(t, Options{})
	sid := env.openPolling()
	c := env.srv.lookup(sid)
	c.mu.Lock()
	c.posting = true // as if a slow POST were being read
	c.mu.Unlock()
	if status, _ := env.post(sid, "3"); status != 400 {
		t.Fatalf("second POST status %d", status)
	}
	waitClosed(t, env, sid)
}

// waitClosed waits until sid is gone and polls get "Session ID unknown".
func waitClosed(t *testing.T, env *testEnv, sid string) {
	t.Helper()
	waitFor(t, "session close", func() bool { return env.srv.lookup(sid) == nil })
	if status, body := env.get(sid); status != 400 || body != `{"code":1,"message":"Session ID unknown"}` {
		t.Fatalf("GET after close %d %q", status, body)
	}
}

func TestPollingClientClose(t *testing.T) {
	env := newTestEnv(t, Options{})
	sid := env.openPolling()
	pending := env.asyncGet(sid)
	env.mustPost(sid, "1")
	if got := <-pending; got != [2]any{200, "6"} {
		t.Fatalf("pending GET %v, want noop", got)
	}
	waitClosed(t, env, sid)
}

func TestPollingInvalidPacket(t *testing.T) {
	env := newTestEnv(t, Options{})
	for _, body := range []string{"abc", "", "4\xff", "bAQIDBA==\x1e4x", "4a\x1e\x1e4b"} {
		sid := env.openPolling()
		if status, _ := env.post(sid, body); status != 400 {
			t.Fatalf("POST %q status %d, want 400", body, status)
		}
		waitClosed(t, env, sid)
	}
	// Well-formed but out of place: accepted by the transport, then fatal.
	for _, body := range []string{"2probe", "5", "4abc", "bAQIDBA==", `451-["x",{"_placeholder":true,"num":0}]`} {
		sid := env.openPolling()
		env.post(sid, body)
		waitClosed(t, env, sid)
	}
}

func TestPollingMaxPayload(t *testing.T) {
	env := newTestEnv(t, Options{MaxPayload: 100})
	sid := env.openPolling()
	env.mustPost(sid, "3"+strings.Repeat("x", 99)) // a pong: its data is ignored
	if status, _ := env.post(sid, "3"+strings.Repeat("x", 100)); status != 413 {
		t.Fatalf("status %d, want 413", status)
	}
	waitClosed(t, env, sid)
}

func TestPollingCancelledGet(t *testing.T) {
	env := newTestEnv(t, Options{})
	sid := env.openPolling()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		env.doCtx(ctx, "GET", env.url("transport=polling&sid="+sid), "")
	}()
	c := env.srv.lookup(sid)
	waitFor(t, "pending poll", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.polling })
	cancel()
	<-done
	waitClosed(t, env, sid)
}

func TestHeartbeatPolling(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(rec)
	opts.PingInterval, opts.PingTimeout = 30*time.Millisecond, 200*time.Millisecond
	env := newTestEnv(t, opts)
	sid := env.openPolling()
	for range 3 {
		env.mustGet(sid, "2")
		env.mustPost(sid, "3")
	}
	env.mustPost(sid, "40")
	s := rec.socket(t, 0)
	// Stop answering: the session dies after PingInterval + PingTimeout.
	if got := rec.reason(t, s); got != "ping timeout" {
		t.Fatalf("reason %q", got)
	}
	waitClosed(t, env, sid)
}

func TestHeartbeatWebSocket(t *testing.T) {
	env := newTestEnv(t, Options{PingInterval: 30 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	c, _ := env.openWS()
	for range 3 {
		c.expect("2")
		c.send("3")
	}
	c.expect("2")
	c.expectClosed() // no pong
}

func TestWebSocketHandshake(t *testing.T) {
	env := newTestEnv(t, Options{})
	c := env.dial("transport=websocket")
	msg := c.read()
	want := regexp.MustCompile(`^0\{"sid":"[A-Za-z0-9_-]{20}","upgrades":\[\],` +
		`"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000\}$`)
	if !want.MatchString(msg) {
		t.Fatalf("open packet %q", msg)
	}
}

func TestWebSocketErrors(t *testing.T) {
	tests := []struct {
		name string
		send func(c *wsClient)
	}{
		{"invalid packet", func(c *wsClient) { c.send("abc") }},
		{"invalid socket packet", func(c *wsClient) { c.send("4abc") }},
		{"client ping", func(c *wsClient) { c.send("2") }},
		{"binary frame", func(c *wsClient) { _ = c.ws.Write(context.Background(), 2, []byte{1, 2}) }},
		{"binary event", func(c *wsClient) { c.send(`451-["x",{"_placeholder":true,"num":0}]`) }},
		{"too big", func(c *wsClient) { c.send("4" + strings.Repeat("x", 100)) }},
		{"close packet", func(c *wsClient) { c.send("1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, Options{MaxPayload: 100})
			c, sid := env.openWS()
			tt.send(c)
			c.expectClosed()
			waitFor(t, "session close", func() bool { return env.srv.lookup(sid) == nil })
		})
	}
}

func TestUpgrade(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	sid := env.openPolling()
	env.mustPost(sid, "40")
	if _, body := env.get(sid); !strings.HasPrefix(body, `40{"sid":"`) {
		t.Fatalf("connect reply %q", body)
	}
	s := rec.socket(t, 0)
	pending := env.asyncGet(sid)

	ws := env.dial("transport=websocket&sid=" + sid)
	ws.send("2probe")
	ws.expect("3probe")
	if got := <-pending; got != [2]any{200, "6"} {
		t.Fatalf("pending poll %v, want noop", got)
	}
	// Queued before the upgrade completes: must come out on the WebSocket.
	if err := s.Emit("queued", 1); err != nil {
		t.Fatal(err)
	}
	ws.send("5")
	ws.expect(`42["queued",1]`)
	ws.send(`42["echo","over ws"]`)
	ws.expect(`42["echo","over ws"]`)

	if status, body := env.get(sid); status != 400 || body != `{"code":3,"message":"Bad request"}` {
		t.Fatalf("poll after upgrade %d %q", status, body)
	}
	if status, _ := env.post(sid, "3"); status != 400 {
		t.Fatalf("POST after upgrade %d", status)
	}
	if _, resp, err := env.dialErr("transport=websocket&sid=" + sid); err == nil || resp.StatusCode != 400 {
		t.Fatalf("second WebSocket: %v, want 400", err)
	}
}

func TestUpgradeFailureKeepsPolling(t *testing.T) {
	env := newTestEnv(t, testOptions(newRecorder()))
	sid := env.openPolling()
	ws := env.dial("transport=websocket&sid=" + sid)
	ws.send("4hello") // not a probe: the upgrade is abandoned
	ws.expectClosed()
	waitFor(t, "probe release", func() bool {
		c := env.srv.lookup(sid)
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.probing
	})
	env.mustPost(sid, "40")
	if _, body := env.get(sid); !strings.HasPrefix(body, `40{"sid":"`) {
		t.Fatalf("polling after failed upgrade: %q", body)
	}
}

func TestConnectTimeout(t *testing.T) {
	env := newTestEnv(t, Options{ConnectTimeout: 50 * time.Millisecond})
	c, _ := env.openWS()
	c.expectClosed()
}

func TestServerClose(t *testing.T) {
	rec := newRecorder()
	srv := NewServer(testOptions(rec))
	env := &testEnv{t: t, srv: srv}
	env.ts = newUnclosedServer(t, srv)
	ws, _ := env.openWS()
	ws.connectNS("")
	sid := env.openPolling()
	pending := env.asyncGet(sid)
	// Keep reading, as real clients do, so the close handshake completes.
	wsClosed := make(chan error, 1)
	go func() {
		for {
			if _, err := ws.readErr(); err != nil {
				wsClosed <- err
				return
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-pending; got != [2]any{200, "1"} {
		t.Fatalf("pending poll %v, want close", got)
	}
	if err := <-wsClosed; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("WebSocket closed with %v, want a normal closure", err)
	}
	if got := rec.reason(t, rec.socket(t, 0)); got != "server shutting down" {
		t.Fatalf("reason %q", got)
	}
	if status, _ := env.get(sid); status != 503 {
		t.Fatalf("request after Close: %d, want 503", status)
	}
}

func TestServerCloseDeadline(t *testing.T) {
	rec := newRecorder()
	srv := NewServer(testOptions(rec))
	env := &testEnv{t: t, srv: srv, ts: newUnclosedServer(t, srv)}
	sid := env.openPolling()
	env.mustPost(sid, "40")
	s := rec.socket(t, 0)
	for range 10 {
		_ = s.Emit("never polled") // left in the queue
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // out of time from the start: no flushing
	if err := srv.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close: %v, want context.Canceled", err)
	}
	if srv.lookup(sid) != nil {
		t.Fatal("session survived Close")
	}
	if got := rec.reason(t, s); got != "server shutting down" {
		t.Fatalf("reason %q", got)
	}
	if err := srv.Close(context.Background()); err != nil { // idempotent
		t.Fatalf("second Close: %v", err)
	}
}
