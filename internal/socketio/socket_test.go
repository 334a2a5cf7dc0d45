package socketio

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestNamespaces(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	c, _ := env.openWS()
	tests := []struct{ send, want string }{
		{"40/random", `44/random,{"message":"Invalid namespace"}`},
		{`40/forbidden,{"token":"x"}`, `44/forbidden,{"message":"Doctor not available","data":{"code":42}}`},
		{"40/secret,", `44/secret,{"message":"Not authorized"}`}, // internal detail stays in the logs
	}
	for _, tt := range tests {
		c.send(tt.send)
		c.expect(tt.want)
	}
	main := c.connectNS("")
	doc := c.connectNS("/doc,")
	if !sidPattern.MatchString(main) || !sidPattern.MatchString(doc) || main == doc {
		t.Fatalf("socket ids %q %q", main, doc)
	}
	c.send(`40/n1,{"token":"abc"}`)
	if msg := c.read(); !strings.HasPrefix(msg, `40/n1,{"sid":"`) {
		t.Fatalf("connect /n1: %q", msg)
	}
	events := rec.waitEvents(t, 6)
	if got := events[5]; got != `auth /n1 {"token":"abc"}` {
		t.Fatalf("Authorize saw %q", got)
	}
	s := rec.socket(t, 1)
	if s.Namespace() != "/doc" || s.Data() != "data:/doc" || s.ID() != doc {
		t.Fatalf("socket %s %s %v", s.ID(), s.Namespace(), s.Data())
	}
	// Events are routed by namespace.
	c.send(`42/doc,["echo","to doc"]`)
	c.expect(`42/doc,["echo","to doc"]`)
	c.send(`42["echo","to main"]`)
	c.expect(`42["echo","to main"]`)
	// Events for a namespace not joined are dropped.
	c.send(`42/n9,["echo","nobody"]`)
	c.send(`42["echo","still here"]`)
	c.expect(`42["echo","still here"]`)
}

func TestDefaultAuthorizeOnlyMainNamespace(t *testing.T) {
	env := newTestEnv(t, Options{})
	c, _ := env.openWS()
	c.send("40/admin,")
	c.expect(`44/admin,{"message":"Invalid namespace"}`)
	c.connectNS("")
}

func TestMaxNamespaces(t *testing.T) {
	env := newTestEnv(t, testOptions(newRecorder()))
	c, _ := env.openWS()
	for i := range maxNamespaces {
		c.connectNS(fmt.Sprintf("/n%d,", i))
	}
	c.send("40/n99,")
	c.expect(`44/n99,{"message":"Too many namespaces"}`)
}

func TestReconnectNamespaceReplacesSocket(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	c, _ := env.openWS()
	first := c.connectNS("")
	second := c.connectNS("")
	if first == second {
		t.Fatal("same socket id twice")
	}
	if got := rec.reason(t, rec.socket(t, 0)); got != "client namespace disconnect" {
		t.Fatalf("old socket reason %q", got)
	}
}

func TestClientAcks(t *testing.T) {
	env := newTestEnv(t, testOptions(newRecorder()))
	c, _ := env.openWS()
	c.connectNS("")
	c.connectNS("/doc,")
	c.send(`420["ask",1,"2",{"3":[true]}]`)
	c.expect(`430[1,"2",{"3":[true]}]`)
	c.send(`42/doc,7["ask"]`)
	c.expect(`43/doc,7[]`)
}

func TestServerAcks(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	c, _ := env.openWS()
	c.connectNS("/doc,")
	s := rec.socket(t, 0)

	type answer struct {
		args []json.RawMessage
		err  error
	}
	answers := make(chan answer, 4)
	cb := func(args []json.RawMessage, err error) { answers <- answer{args, err} }
	if err := s.EmitWithAck("question", cb, "why", 42); err != nil {
		t.Fatal(err)
	}
	c.expect(`42/doc,0["question","why",42]`)
	if err := s.EmitWithAck("again", cb); err != nil {
		t.Fatal(err)
	}
	c.expect(`42/doc,1["again"]`)
	c.send(`43/doc,0["because",{"ok":true}]`)
	a := <-answers
	if a.err != nil || len(a.args) != 2 || string(a.args[1]) != `{"ok":true}` {
		t.Fatalf("answer %+v", a)
	}
	c.send(`43/doc,0["duplicate"]`) // already answered: dropped
	c.send(`43/doc,77["unknown"]`)  // never asked: dropped
	// The socket goes away with id 1 unanswered: its callback gets ErrDisconnected.
	c.send("41/doc,")
	if a := <-answers; !errors.Is(a.err, ErrDisconnected) {
		t.Fatalf("pending ack got %+v", a)
	}
	if err := s.EmitWithAck("late", cb); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("EmitWithAck after disconnect: %v", err)
	}
}

func TestTooManyPendingAcks(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	c, _ := env.openWS()
	c.connectNS("")
	s := rec.socket(t, 0)
	for i := range maxPendingAcks {
		if err := s.EmitWithAck("q", func([]json.RawMessage, error) {}); err != nil {
			t.Fatalf("EmitWithAck %d: %v", i, err)
		}
		c.read()
	}
	if err := s.EmitWithAck("q", func([]json.RawMessage, error) {}); !errors.Is(err, ErrTooManyAcks) {
		t.Fatalf("err %v, want ErrTooManyAcks", err)
	}
}

func TestAckFunc(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(rec)
	errs := make(chan error, 3)
	onConnect := opts.OnConnect
	opts.OnConnect = func(s *Socket) {
		onConnect(s)
		s.On("twice", func(args []json.RawMessage, ack AckFunc) {
			errs <- ack("one")
			errs <- ack("two")
		})
		s.On("bad", func(args []json.RawMessage, ack AckFunc) {
			errs <- ack(make(chan int)) // not JSON-encodable
		})
	}
	env := newTestEnv(t, opts)
	c, _ := env.openWS()
	c.connectNS("")
	c.send(`423["twice"]`)
	c.expect(`433["one"]`)
	if e1, e2 := <-errs, <-errs; e1 != nil || e2 == nil {
		t.Fatalf("ack errors %v, %v", e1, e2)
	}
	c.send(`424["bad"]`)
	if err := <-errs; err == nil {
		t.Fatal("unencodable ack argument accepted")
	}
	c.send(`42["twice"]`) // no ack requested: the acks are no-ops
	if e1, e2 := <-errs, <-errs; e1 != nil || e2 != nil {
		t.Fatalf("no-op ack errors %v, %v", e1, e2)
	}
}

func TestEmitErrors(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	c, _ := env.openWS()
	c.connectNS("")
	s := rec.socket(t, 0)
	for _, name := range []string{"", "connect", "disconnect", "connect_error", "newListener"} {
		if err := s.Emit(name); !errors.Is(err, ErrReservedEvent) {
			t.Errorf("Emit(%q): %v", name, err)
		}
	}
	if err := s.Emit("x", func() {}); err == nil {
		t.Error("Emit with a func argument succeeded")
	}
	if err := s.Emit("text", "<a&b>", nil, []byte{1, 2}, json.RawMessage(`{"raw":1}`)); err != nil {
		t.Fatal(err)
	}
	c.expect(`42["text","\u003ca\u0026b\u003e",null,"AQI=",{"raw":1}]`)
}

func TestClientDisconnect(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	c, sid := env.openWS()
	c.connectNS("")
	c.connectNS("/doc,")
	main := rec.socket(t, 0)
	c.send("41")
	if got := rec.reason(t, main); got != "client namespace disconnect" {
		t.Fatalf("reason %q", got)
	}
	if err := main.Emit("x"); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Emit after disconnect: %v", err)
	}
	// The connection lives on for the other namespace.
	c.send(`42/doc,["echo",1]`)
	c.expect(`42/doc,["echo",1]`)
	if env.srv.lookup(sid) == nil {
		t.Fatal("connection closed with a namespace still joined")
	}
}

func TestServerDisconnect(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	c, _ := env.openWS()
	c.connectNS("/doc,")
	c.send(`42/doc,["bye"]`)
	c.expect("41/doc,")
	s := rec.socket(t, 0)
	if got := rec.reason(t, s); got != "server namespace disconnect" {
		t.Fatalf("reason %q", got)
	}
	s.Disconnect()              // idempotent
	c.send(`42/doc,["echo",1]`) // dropped: not joined any more
	c.connectNS("/doc,")        // the client may join again
	c.send(`42/doc,["echo",2]`) // and talk again
	c.expect(`42/doc,["echo",2]`)
}

func TestDisconnectFromOtherGoroutine(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	c, _ := env.openWS()
	c.connectNS("")
	s := rec.socket(t, 0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(s.Disconnect)
	}
	wg.Wait()
	c.expect("41")
	if got := rec.reason(t, s); got != "server namespace disconnect" {
		t.Fatalf("reason %q", got)
	}
}

func TestSlowClient(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	sid := env.openPolling()
	env.mustPost(sid, "40")
	s := rec.socket(t, 0)
	var err error
	for i := 0; err == nil && i < sendQueueLen+10; i++ {
		err = s.Emit("flood", i) // nobody polls
	}
	if !errors.Is(err, ErrSlowClient) {
		t.Fatalf("err %v, want ErrSlowClient", err)
	}
	if got := rec.reason(t, s); got != "slow client" {
		t.Fatalf("reason %q", got)
	}
	waitClosed(t, env, sid)
}

func TestHandlerPanic(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	c, _ := env.openWS()
	c.connectNS("")
	c.send(`42["panic"]`)
	c.expectClosed()
	if got := rec.reason(t, rec.socket(t, 0)); got != "callback panic" {
		t.Fatalf("reason %q", got)
	}
	// The server goes on serving.
	c2, _ := env.openWS()
	c2.connectNS("")
}

func TestParseErrorDisconnectsSockets(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	c, _ := env.openWS()
	c.connectNS("")
	c.send(`42["connect"]`) // reserved name: socket.io-parser refuses it too
	c.expectClosed()
	if got := rec.reason(t, rec.socket(t, 0)); got != "parse error" {
		t.Fatalf("reason %q", got)
	}
}

func TestHandlersRunInOrder(t *testing.T) {
	rec := newRecorder()
	env := newTestEnv(t, testOptions(rec))
	sid := env.openPolling()
	var body []string
	body = append(body, "40")
	for i := range 50 {
		body = append(body, fmt.Sprintf(`42["record",%d]`, i))
	}
	env.mustPost(sid, strings.Join(body, "\x1e"))
	events := rec.waitEvents(t, 51)
	for i, e := range events[1:] {
		if want := fmt.Sprintf("/ record [%d]", i); e != want {
			t.Fatalf("event %d = %q, want %q", i, e, want)
		}
	}
}
