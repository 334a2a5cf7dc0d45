package socketio

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// TestInteropSocketIOClient runs testdata/client.mjs, which uses the real
// socket.io-client 4.x from npm, against this server over WebSocket only,
// polling only, and polling upgraded to WebSocket.
//
// Without node (or npm) the test is skipped, unless CI=true or
// REHABRTC_REQUIRE_EXTERNAL is set, where it fails.
func TestInteropSocketIOClient(t *testing.T) {
	if testing.Short() && !testutil.RequireExternal() {
		t.Skip("interop test runs node (and npm once); skipped in -short mode")
	}
	node := testutil.Tool(t, "node", "install Node.js ≥ 18 to run the socket.io-client interop test")
	testutil.NPMInstall(t, "testdata", "socket.io-client")

	for _, mode := range []string{"websocket", "polling", "upgrade"} {
		t.Run(mode, func(t *testing.T) {
			rec := newRecorder()
			env := newTestEnv(t, interopOptions(rec))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "client.mjs", env.ts.URL, mode)
			cmd.Dir = "testdata"
			out, err := cmd.CombinedOutput()
			t.Logf("client.mjs %s:\n%s", mode, out)
			if err != nil {
				t.Fatalf("client.mjs %s: %v", mode, err)
			}
			checkInteropServerSide(t, env, rec)
		})
	}
}

// interopOptions is the application client.mjs talks to.
func interopOptions(rec *recorder) Options {
	return Options{
		Authorize: func(r *http.Request, nsp string, auth json.RawMessage) (any, error) {
			var a struct{ Token string }
			_ = json.Unmarshal(auth, &a)
			switch {
			case nsp == "/forbidden":
				return nil, &ConnectError{Message: "Doctor not available", Data: map[string]int{"code": 42}}
			case nsp != "/" && !strings.HasPrefix(nsp, "/doc-"):
				return nil, ErrInvalidNamespace
			case a.Token != "secret":
				return nil, &ConnectError{Message: "bad token"}
			}
			return nil, nil
		},
		OnConnect: func(s *Socket) {
			rec.add(s)
			s.OnDisconnect(func(reason string) { rec.disconnected(s, reason) })
			_ = s.Emit("welcome", map[string]string{"id": s.ID(), "namespace": s.Namespace()})
			s.On("ask", func(args []json.RawMessage, ack AckFunc) { _ = ack(rawArgs(args)...) })
			s.On("echo", func(args []json.RawMessage, _ AckFunc) { _ = s.Emit("echo", rawArgs(args)...) })
			s.On("echo-flush", func([]json.RawMessage, AckFunc) { _ = s.Emit("flushed") })
			s.On("kick-me", func([]json.RawMessage, AckFunc) { s.Disconnect() })
			s.On("request-ack", func(args []json.RawMessage, _ AckFunc) {
				err := s.EmitWithAck("question", func(reply []json.RawMessage, err error) {
					if err == nil {
						_ = s.Emit("answer-received", reply)
					}
				}, args[0])
				if err != nil {
					rec.event("EmitWithAck: " + err.Error())
				}
			})
		},
	}
}

// checkInteropServerSide checks what the server saw of the client's run.
func checkInteropServerSide(t *testing.T, env *testEnv, rec *recorder) {
	t.Helper()
	main, doc := rec.socket(t, 0), rec.socket(t, 1)
	if main.Namespace() != "/" || doc.Namespace() != "/doc-123" {
		t.Fatalf("namespaces %q %q", main.Namespace(), doc.Namespace())
	}
	if got := rec.reason(t, doc); got != "client namespace disconnect" {
		t.Errorf("doc socket reason %q", got)
	}
	if got := rec.reason(t, main); got != "server namespace disconnect" {
		t.Errorf("main socket reason %q", got)
	}
	// The client closed its Engine.IO session: nothing is left behind.
	waitFor(t, "sessions to close", func() bool {
		env.srv.mu.Lock()
		defer env.srv.mu.Unlock()
		return len(env.srv.conns) == 0
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.events) > 0 {
		t.Errorf("server-side errors: %q", rec.events)
	}
}
