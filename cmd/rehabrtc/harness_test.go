package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

const testKey = "test-api-key-0123456789abcdef0123456789"

// testServer is a real rehabrtc server (the same composition as `serve`)
// running in this process on free loopback ports.
type testServer struct {
	t       *testing.T
	cfg     *config.Config
	cancel  context.CancelFunc
	done    chan error
	service string // http://127.0.0.1:port
	gateway string
}

func freePorts(t *testing.T, n int) int { return testutil.FreePorts(t, n) }

func testConfig(t *testing.T, dataDir string, maxSessions int) *config.Config {
	base := freePorts(t, maxSessions+2)
	cfg := config.Default()
	cfg.Service.Port = base
	cfg.WebRTC.ExternalPort = base + 1
	cfg.WebRTC.LocalBasePort = base + 2
	cfg.WebRTC.MaxSessions = maxSessions
	cfg.RehabRTC.DataDir = dataDir
	cfg.RehabRTC.APIKeys = []string{testKey}
	cfg.RehabRTC.Gateway.Listen = fmt.Sprintf("127.0.0.1:%d", base+1)
	cfg.RehabRTC.TURN.Listen = "127.0.0.1:0" // a free port; the URLs handed out say which
	cfg.RehabRTC.TURN.RelayIP = "127.0.0.1"  // tests may name the host anything (TestTURNBoundToInvitation derives it)
	cfg.RehabRTC.LogLevel = "warn"
	cfg.RehabRTC.SFU.UDPPort, cfg.RehabRTC.SFU.TCPPort = 0, 0 // free media ports: tests run side by side
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startServer(t *testing.T, cfg *config.Config) *testServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return startServerLog(t, cfg, log)
}

// startServerLog is startServer with the server's logger given.
func startServerLog(t *testing.T, cfg *config.Config, log *slog.Logger) *testServer {
	t.Helper()
	srv, err := newServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{t: t, cfg: cfg, cancel: cancel, done: make(chan error, 1),
		service: "http://" + cfg.ServiceAddr(), gateway: "http://" + cfg.GatewayAddr()}
	go func() { ts.done <- srv.run(ctx) }()
	t.Cleanup(ts.stop)
	testutil.Eventually(t, 5*time.Second, func() error {
		_, err := httpGet(ts.service + "/healthz")
		return err
	})
	return ts
}

// stop shuts the server down gracefully and waits for it.
func (ts *testServer) stop() {
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	ts.cancel = nil
	select {
	case err := <-ts.done:
		if err != nil {
			ts.t.Errorf("server: %v", err)
		}
	case <-time.After(15 * time.Second):
		ts.t.Error("server did not stop within 15 s")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// api sends one request with the API key and decodes the JSON reply.
func (ts *testServer) api(method, path string, body any, out any) int {
	ts.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, ts.service+path, rd)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			ts.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// sessionJSON is a session as the API shows it: the one declaration,
// session.View, decoded.
type sessionJSON struct{ session.View }

type replyJSON struct {
	Status    string      `json:"status"`
	ErrorText string      `json:"error_text"`
	Session   sessionJSON `json:"session"`
}

// manage runs one session_manage action and returns the HTTP status and reply.
func (ts *testServer) manage(fields map[string]any) (int, replyJSON) {
	ts.t.Helper()
	var r replyJSON
	code := ts.api(http.MethodPost, "/api/sessions/manager", map[string]any{"session_manage": fields}, &r)
	return code, r
}

func (s sessionJSON) link(t *testing.T, uuid string) string {
	t.Helper()
	for _, inv := range s.Invitations {
		if inv.UUID == uuid {
			return inv.URL
		}
	}
	t.Fatalf("no invitation for %s", uuid)
	return ""
}

// keyOf extracts key= of a session link.
func keyOf(link string) string {
	_, k, _ := strings.Cut(link, "key=")
	return k
}

// wsClient is a real WebSocket client of the session protocol.
type wsClient struct {
	t    *testing.T
	c    *websocket.Conn
	msgs chan map[string]any
	done chan struct{}
	err  error
}

func dialWS(t *testing.T, baseURL string, port int) *wsClient {
	t.Helper()
	u := strings.Replace(baseURL, "http://", "ws://", 1) + fmt.Sprintf("/websocket/%d/", port)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	c.SetReadLimit(1 << 20)
	w := &wsClient{t: t, c: c, msgs: make(chan map[string]any, 1024), done: make(chan struct{})}
	go w.read()
	t.Cleanup(func() { c.CloseNow(); <-w.done })
	return w
}

func (w *wsClient) read() {
	defer close(w.done)
	for {
		_, data, err := w.c.Read(context.Background())
		if err != nil {
			w.err = err
			return
		}
		var m map[string]any
		if json.Unmarshal(data, &m) == nil {
			select {
			case w.msgs <- m:
			default:
			}
		}
	}
}

func (w *wsClient) send(v any) {
	w.t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatalf("send: %v", err)
	}
}

// expect waits for the next message of type typ, skipping others.
func (w *wsClient) expect(typ string) map[string]any {
	w.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-w.msgs:
			if m["type"] == typ {
				return m
			}
		case <-w.done:
			for { // the reader may have queued messages before the close
				select {
				case m := <-w.msgs:
					if m["type"] == typ {
						return m
					}
					continue
				default:
				}
				break
			}
			w.t.Fatalf("connection closed (%v) while waiting for %q", w.err, typ)
		case <-timeout:
			w.t.Fatalf("no %q within 5 s", typ)
		}
	}
}

// closed waits for the connection to end and returns its close code.
func (w *wsClient) closed() websocket.StatusCode {
	w.t.Helper()
	select {
	case <-w.done:
		return websocket.CloseStatus(w.err)
	case <-time.After(5 * time.Second):
		w.t.Fatal("connection not closed within 5 s")
		return 0
	}
}

// join dials the session of link through base and joins with its key.
func join(t *testing.T, base, link, uuid, name string) (*wsClient, map[string]any) {
	t.Helper()
	var port int
	fmt.Sscanf(link[strings.Index(link, "/webrtc/")+len("/webrtc/"):], "%d", &port)
	w := dialWS(t, base, port)
	w.send(map[string]any{"type": "join", "key": keyOf(link), "uuid": uuid, "name": name})
	return w, w.expect("welcome")
}

func decodeBody(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode: %v", err)
	}
}

func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
