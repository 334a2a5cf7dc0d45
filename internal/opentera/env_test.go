package opentera_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/endpoint"
	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/opentera/teratest"
	"github.com/rehabrtc/rehabrtc/internal/ports"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/boltstore"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

const (
	serviceKey  = "VideoRehabService"
	serviceUUID = "00000000-0000-4000-8000-00000000a5e1"
	secret      = "service-token-secret-1"
	userA       = "aaaaaaaa-0000-4000-8000-000000000001"
	userB       = "aaaaaaaa-0000-4000-8000-000000000002"
	partP       = "bbbbbbbb-0000-4000-8000-000000000001"
	partQ       = "bbbbbbbb-0000-4000-8000-000000000002"
	devD        = "dddddddd-0000-4000-8000-000000000001"
)

type envOpts struct {
	backend bool                                // a fake main server and the mirroring Store
	busy    bool                                // RehabRTC.busy_reply
	wrap    func(session.Runner) session.Runner // e.g. gate readiness
	dataDir string                              // reuse a data directory (restart tests)
}

// env is a real session Manager with in-process endpoints listening on
// loopback, the OpenTera Service on a real redis-server, and the tools to
// act as OpenTera: an RPC client and a listener of published events.
type env struct {
	t      *testing.T
	opts   envOpts
	redis  *teratest.Redis
	main   *teratest.MainServer
	rdb    *redis.Client
	svc    *opentera.Service
	mgr    *session.Manager
	bolt   *boltstore.Store
	rpc    *teratest.RPCClient
	events *teratest.Listener
	clock  *clock
	base   int
	closed bool
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newEnv(t *testing.T, opts envOpts) *env {
	t.Helper()
	r := teratest.StartRedis(t)
	r.Set(opentera.ServiceTokenKey, secret)
	if opts.dataDir == "" {
		opts.dataDir = t.TempDir()
	}
	e := &env{t: t, opts: opts, redis: r, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, base: testutil.FreePorts(t, 4)}
	if opts.backend {
		e.main = teratest.StartMainServer(t, serviceUUID, secret)
		e.main.Users[1] = teratest.Named{UUID: userA, Name: "Dr Tremblay"}
	}
	e.open()
	e.rpc = teratest.NewRPCClient(r.Client)
	e.events = teratest.Listen(t, r.Client)
	t.Cleanup(e.close)
	return e
}

// open builds the service as main does, over the data directory.
func (e *env) open() {
	t := e.t
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	bolt, err := boltstore.Open(filepath.Join(e.opts.dataDir, "opentera.db"))
	if err != nil {
		t.Fatal(err)
	}
	e.bolt = bolt
	e.rdb = redis.NewClient(&redis.Options{Addr: e.redis.Addr})
	var store session.Store = bolt
	var backend *opentera.Backend
	if e.main != nil {
		backend = opentera.NewBackend(opentera.BackendConfig{
			Host: "127.0.0.1", Port: e.main.Listener.Addr().(*net.TCPAddr).Port, VerifyTLS: true,
			Tokens: opentera.NewServiceToken(e.rdb, serviceUUID), Client: e.main.Client(), Logger: log,
		})
		store = opentera.NewStore(backend, bolt, log)
	}
	e.svc = opentera.New(opentera.Config{Redis: e.rdb, ServiceKey: serviceKey, ServiceUUID: serviceUUID,
		Backend: backend, BusyReply: e.opts.busy, Logger: log.With("component", "opentera")})
	var runner session.Runner = &endpoint.Runner{Bind: "127.0.0.1"}
	if e.opts.wrap != nil {
		runner = e.opts.wrap(runner)
	}
	e.mgr = session.NewManager(session.Config{
		Store: store, Runner: runner, Ports: ports.New(e.base, 4), ServiceKey: serviceKey,
		URLs:   session.URLs{Scheme: "https", Host: "rehab.example", Port: 40075},
		Logger: log.With("component", "session"), Now: e.clock.now, Events: e.svc,
	})
	if err := e.mgr.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.svc.Start(e.mgr)
	e.closed = false
	e.waitReady()
}

func (e *env) waitReady() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.svc.Ready() != nil {
		if time.Now().After(deadline) {
			e.t.Fatalf("service not ready: %v", e.svc.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// close shuts down as main does: OpenTera side first, then sessions.
func (e *env) close() {
	if e.closed {
		return
	}
	e.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.svc.Close(ctx)
	e.mgr.Shutdown(ctx)
	e.rdb.Close()
	e.bolt.Close()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// reply is OpenTera's session_manage reply object.
type reply struct {
	Status    string          `json:"status"`
	ErrorText string          `json:"error_text"`
	Session   json.RawMessage `json:"session"`
}

type sessionJSON struct {
	ID           int64   `json:"id_session"`
	UUID         string  `json:"session_uuid"`
	Name         string  `json:"session_name"`
	Status       int     `json:"session_status"`
	Duration     int64   `json:"session_duration"`
	Port         int     `json:"session_port"`
	Key          string  `json:"session_key"`
	CreatorUUID  string  `json:"session_creator_uuid"`
	URLUsers     string  `json:"session_url_users"`
	Users        members `json:"session_users"`
	Participants members `json:"session_participants"`
	Devices      members `json:"session_devices"`
	Invitations  []struct {
		Kind string `json:"kind"`
		UUID string `json:"uuid"`
		URL  string `json:"session_url"`
	} `json:"session_invitations"`
	Events []struct {
		ID   int64  `json:"id_session_event"`
		Type int    `json:"id_session_event_type"`
		Text string `json:"session_event_text"`
	} `json:"session_events"`
}

// members reads a member list as uuids: OpenTera's running sessions list
// uuids, the database's JSON (stop) objects with a <kind>_uuid.
type members []string

func (m *members) UnmarshalJSON(b []byte) error {
	var list []json.RawMessage
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*m = members{}
	for _, raw := range list {
		var u string
		if json.Unmarshal(raw, &u) != nil {
			var o map[string]any
			if err := json.Unmarshal(raw, &o); err != nil {
				return err
			}
			for k, v := range o {
				if strings.HasSuffix(k, "_uuid") {
					u, _ = v.(string)
				}
			}
		}
		*m = append(*m, u)
	}
	return nil
}

func (r reply) session(t *testing.T) sessionJSON {
	t.Helper()
	var s sessionJSON
	if err := json.Unmarshal(r.Session, &s); err != nil {
		t.Fatalf("session %s: %v", r.Session, err)
	}
	return s
}

func (s sessionJSON) link(t *testing.T, uuid string) string {
	t.Helper()
	for _, inv := range s.Invitations {
		if inv.UUID == uuid {
			return inv.URL
		}
	}
	t.Fatalf("no invitation for %s in %+v", uuid, s.Invitations)
	return ""
}

// manage calls session_manage as the main server does and checks the
// envelope: status "OK", method and pattern echoed.
func (e *env) manage(fields map[string]any) reply {
	e.t.Helper()
	return e.manageOn(serviceKey, fields)
}

func (e *env) manageOn(target string, fields map[string]any) reply {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"session_manage": fields})
	env, err := e.rpc.Call(context.Background(), target, "session_manage", 10*time.Second, string(body))
	if err != nil {
		e.t.Fatalf("session_manage %v: %v", fields["action"], err)
	}
	if env.Status != "OK" || env.Method != "session_manage" || env.Pattern != "service."+target+".rpc" {
		e.t.Fatalf("envelope %+v", env)
	}
	var r reply
	if err := json.Unmarshal(env.ReturnValue, &r); err != nil {
		e.t.Fatalf("return_value %s: %v", env.ReturnValue, err)
	}
	return r
}

func (e *env) start(users, participants, devices []string) sessionJSON {
	e.t.Helper()
	r := e.manage(map[string]any{"action": "start", "id_service": 3, "id_session": 0, "id_session_type": 1,
		"id_creator_user": 1, "session_creator_user_uuid": users[0],
		"session_users": users, "session_participants": participants, "session_devices": devices,
		"parameters": map[string]any{"recordable": true}})
	if r.Status != "started" {
		e.t.Fatalf("start: %+v", r)
	}
	return r.session(e.t)
}

// get fetches a session link on the session's own listener, as nginx would
// route /webrtc/<port>/… to 127.0.0.1:<port>/…; it returns the status.
func get(t *testing.T, link string) int {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(strings.TrimPrefix(u.Path, "/webrtc/"), "/", 2)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%s/%s?%s", parts[0], parts[1], u.RawQuery))
	if err != nil {
		t.Fatalf("GET %s: %v", link, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// join connects a real peer to a session with its personal link.
func join(t *testing.T, link, name string) {
	t.Helper()
	u, _ := url.Parse(link)
	port := strings.SplitN(strings.TrimPrefix(u.Path, "/webrtc/"), "/", 2)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%s/websocket/%s/", port, port), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { c.CloseNow(); <-done })
	msg, _ := json.Marshal(map[string]string{"type": "join", "key": u.Query().Get("key"), "name": name})
	if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	_, data, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(data), `"welcome"`) {
		close(done)
		t.Fatalf("join: %s %v", data, err)
	}
	go func() { // keep reading so pings are answered, until the cleanup closes it
		defer close(done)
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
}
