package ehrc

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const testAPIKey = "test-api-key-0123456789abcdef0123456789"

// testEnv is one Service behind a real HTTP server on loopback.
type testEnv struct {
	t   *testing.T
	svc *Service
	srv *httptest.Server
}

func newTestEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	cfg.APIKeys = []string{testAPIKey}
	e := &testEnv{t: t, svc: New(cfg)}
	e.srv = httptest.NewServer(e.svc.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.svc.Close(ctx); err != nil {
			t.Errorf("Service.Close: %v", err)
		}
		e.srv.Close()
	})
	return e
}

// get calls a route with an optional bearer credential.
func (e *testEnv) get(path, auth string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// getJSON calls a route and decodes its JSON answer.
func (e *testEnv) getJSON(path, auth string) (int, map[string]any) {
	e.t.Helper()
	code, body := e.get(path, auth)
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		e.t.Fatalf("GET %s: %d %q is not JSON", path, code, body)
	}
	return code, m
}

// createNS creates a namespace and returns its doctor token.
func (e *testEnv) createNS(id string) string {
	e.t.Helper()
	code, m := e.getJSON("/api/create-namespace?namespaceId="+id, testAPIKey)
	tok, _ := m["doctor-token"].(string)
	if code != 200 || tok == "" {
		e.t.Fatalf("create-namespace %s: %d %v", id, code, m)
	}
	return tok
}

// createRoom returns a new room id.
func (e *testEnv) createRoom() string {
	e.t.Helper()
	code, m := e.getJSON("/api/create-room", "")
	id, _ := m["room-id"].(string)
	if code != 200 || id == "" {
		e.t.Fatalf("create-room: %d %v", code, m)
	}
	return id
}

func (e *testEnv) available(ns string) bool {
	e.t.Helper()
	_, m := e.getJSON("/api/check-availability?namespaceId="+ns, "")
	return m["availability"] == true
}

// counts returns the registered namespaces, the namespaces with a live
// office, and the room ids known.
func (e *testEnv) counts() (namespaces, offices, rooms int) {
	g := e.svc.reg
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, ns := range g.nss {
		if ns.office != nil {
			offices++
		}
	}
	return len(g.nss), offices, len(g.rooms)
}

func (e *testEnv) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + path
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within 5 s", what)
		}
	}
}
