package childproc

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// envTestChild turns the test binary into a native child (see testChild).
const envTestChild = "CHILDPROC_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(envTestChild); mode != "" {
		os.Exit(testChild(mode, os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// testChild is a native child serving a fake endpoint: the same control
// protocol as `rehabrtc signal`, without the hub. Mode "hang" ignores stop
// and SIGTERM.
func testChild(mode string, args []string) int {
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	port := fs.Int("port", 0, "")
	id := fs.Int64("session", 0, "")
	bind := fs.String("bind", "", "")
	fs.String("log-level", "", "")
	fs.Float64("peer-rate", 0, "")
	fs.Float64("peer-burst", 0, "")
	fs.String("trusted-proxies", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if mode == "hang" {
		signal.Ignore(syscall.SIGTERM)
		ctx = context.Background()
	}
	control, err := ControlFromFD(3)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	err = Serve(ctx, Child{Control: control, Addr: net.JoinHostPort(*bind, strconv.Itoa(*port)), SessionID: *id,
		Logger: log, Build: func(spec session.RunSpec, ice ICE) ChildEndpoint {
			return &fakeEndpoint{gate: spec.Gate, ice: ice.Servers, peerICE: ice.Peer, uuid: spec.SessionUUID, hang: mode == "hang"}
		}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// fakeEndpoint answers /status (Valid), /page (Admit, replies the identity)
// /info (what the child was given, and who was kicked) and /ice (the ICE
// servers of ?kind=&uuid=, asked of the parent as the hub does).
type fakeEndpoint struct {
	gate    session.Gate
	ice     json.RawMessage
	peerICE PeerICE
	uuid    string
	hang    bool

	mu     sync.Mutex
	kicked []session.Identity
}

func (e *fakeEndpoint) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		if !e.gate.Valid(r.Context(), r.URL.Query().Get("key")) {
			w.WriteHeader(http.StatusForbidden)
		}
	})
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		id, err := e.gate.Admit(r.Context(), r.URL.Query().Get("key"), r.URL.Query().Get("uuid"))
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		json.NewEncoder(w).Encode(id)
	})
	mux.HandleFunc("/ice", func(w http.ResponseWriter, r *http.Request) {
		if e.peerICE == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		servers, exp := e.peerICE.ICEServers(0, session.Identity{Kind: session.Kind(q.Get("kind")), UUID: q.Get("uuid")})
		json.NewEncoder(w).Encode(map[string]any{"servers": servers, "expires": exp.Unix(), "policy": e.peerICE.Policy()})
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"ice": e.ice, "uuid": e.uuid, "kicked": e.kicked})
	})
	return mux
}

func (e *fakeEndpoint) Kick(id session.Identity) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.kicked = append(e.kicked, id)
}

func (e *fakeEndpoint) Peers() []session.Peer {
	return []session.Peer{{ID: "p1", Name: "Dr T", UUID: "u1", Role: session.KindUser}}
}

func (e *fakeEndpoint) Close(ctx context.Context, _ session.StopReason) error {
	if e.hang {
		select {} // never returns: the parent must kill the process
	}
	return nil
}
