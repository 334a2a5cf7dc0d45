package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
	"github.com/rehabrtc/rehabrtc/internal/opentera/teratest"
)

const (
	otServiceUUID = "00000000-0000-4000-8000-00000000a5e1"
	otSecret      = "main-server-secret"
)

// openTeraConfig is a test configuration attached to a real redis-server
// and to the fake main server (self-signed: verify_tls off).
func openTeraConfig(t *testing.T, r *teratest.Redis, m *teratest.MainServer) *config.Config {
	cfg := testConfig(t, t.TempDir(), 3)
	cfg.Redis.Hostname, cfg.Redis.Port = "127.0.0.1", r.Port
	if m != nil {
		cfg.Backend.Hostname, cfg.Backend.Port = "127.0.0.1", m.Listener.Addr().(*net.TCPAddr).Port
		cfg.Backend.VerifyTLS = false
	}
	return cfg
}

func readyz(t *testing.T, ts *testServer) int {
	t.Helper()
	resp, err := http.Get(ts.service + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitStatus(t *testing.T, ts *testServer, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for readyz(t, ts) != want {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never answered %d", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOpenTeraServe runs the whole server as an OpenTera operator would:
// the startup contract takes the port from Redis, session_manage arrives
// over Redis, the main server gets the bookkeeping, invitations go out,
// and /readyz follows Redis.
func TestOpenTeraServe(t *testing.T) {
	r := teratest.StartRedis(t)
	r.Set(opentera.ServiceTokenKey, otSecret)
	m := teratest.StartMainServer(t, otServiceUUID, otSecret)
	cfg := openTeraConfig(t, r, m)
	port := freePorts(t, 1)
	r.SetService(cfg.Service.Name, otServiceUUID, "127.0.0.1", port)

	ts := startServer(t, cfg)
	if cfg.Service.Port != port || !strings.HasSuffix(ts.service, ":"+strconv.Itoa(port)) {
		t.Fatalf("Service.port %d, want service_port %d from Redis", cfg.Service.Port, port)
	}
	waitStatus(t, ts, http.StatusOK)
	events := teratest.Listen(t, r.Client)

	body := `{"session_manage": {"action": "start", "id_service": 3, "id_session": 0, "id_session_type": 1, "id_creator_user": 1,
	  "session_creator_user_uuid": "11111111-1111-4111-8111-111111111111",
	  "session_users": ["11111111-1111-4111-8111-111111111111"], "session_participants": ["22222222-2222-4222-8222-222222222222"]}}`
	env, err := teratest.NewRPCClient(r.Client).Call(context.Background(), cfg.Service.Name, "session_manage", 10*time.Second, body)
	if err != nil || env.Status != "OK" {
		t.Fatalf("rpc: %+v %v", env, err)
	}
	var rep replyJSON
	if err := json.Unmarshal(env.ReturnValue, &rep); err != nil || rep.Status != "started" || rep.Session.ID != 1 {
		t.Fatalf("reply %s: %v", env.ReturnValue, err)
	}
	if calls := m.Calls(); len(calls) != 3 || calls[0].Path != "/api/service/sessions" {
		t.Fatalf("main server calls %+v", calls)
	}
	for _, msg := range events.Take(t, 3, 10*time.Second) {
		if !strings.Contains(msg.Channel, "22222222-2222-4222-8222-222222222222") {
			continue
		}
		var te pb.TeraEvent
		if err := proto.Unmarshal(msg.Payload, &te); err != nil || len(te.GetEvents()) != 1 {
			t.Fatalf("participant event: %v", err)
		}
		var j pb.JoinSessionEvent
		if err := te.GetEvents()[0].UnmarshalTo(&j); err != nil || j.GetSessionUrl() != rep.Session.link(t, "22222222-2222-4222-8222-222222222222") {
			t.Fatalf("invitation %+v: %v", &j, err)
		}
	}

	r.Kill()
	waitStatus(t, ts, http.StatusServiceUnavailable)
	r.Restart()
	waitStatus(t, ts, http.StatusOK)
}

func TestOpenTeraStartupErrors(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := teratest.StartRedis(t)
	cfg := openTeraConfig(t, r, nil)
	if _, err := newServer(cfg, log); err == nil || !strings.Contains(err.Error(), `"service.VideoRehabService" is missing from Redis`) {
		t.Fatalf("missing registration: %v", err)
	}
	cfg = testConfig(t, t.TempDir(), 3)
	cfg.Backend.Hostname, cfg.Backend.Port = "127.0.0.1", 40075
	if _, err := newServer(cfg, log); err == nil || !strings.Contains(err.Error(), "Redis.hostname is not") {
		t.Fatalf("backend without Redis: %v", err)
	}
}
