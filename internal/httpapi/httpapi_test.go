package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// sessions answers from a table: the API's job is auth, decoding and error
// mapping, which these tests pin down; the Manager is tested on its own.
type sessions struct{ err error }

func (s sessions) Manage(ctx context.Context, req *session.Request) (*session.Reply, error) {
	if s.err != nil {
		return nil, s.err
	}
	return &session.Reply{Status: "started"}, nil
}
func (s sessions) Get(ctx context.Context, id int64) (*session.View, error) {
	return &session.View{ID: id}, s.err
}
func (s sessions) List(ctx context.Context, running bool) ([]*session.View, error) { return nil, s.err }
func (s sessions) Forget(ctx context.Context, id int64) (*session.View, error) {
	return &session.View{ID: id}, s.err
}

const key = "0123456789abcdef0123456789abcdef"

func TestErrorsHaveAPublicFace(t *testing.T) {
	body := `{"session_manage":{"action":"start"}}`
	for name, tc := range map[string]struct {
		err      error
		auth     string
		body     string
		want     int
		wantText string
	}{
		"ok":         {nil, "Bearer " + key, body, 200, ""},
		"no auth":    {nil, "", body, 401, "missing or wrong API key"},
		"basic auth": {nil, "Basic " + key, body, 401, ""},
		"prefix key": {nil, "Bearer " + key[:10], body, 401, ""},
		"bad body":   {nil, "Bearer " + key, "{", 400, "malformed JSON"},
		"not found":  {&session.Error{Code: session.CodeNotFound, Text: "No matching session"}, "Bearer " + key, body, 404, "No matching session"},
		"no port":    {&session.Error{Code: session.CodeUnavailable, Text: "No available port left"}, "Bearer " + key, body, 503, "No available port left"},
		"internal":   {errors.New("disk on fire at /var/x"), "Bearer " + key, body, 500, "internal error"},
		"too big":    {nil, "Bearer " + key, `{"session_manage":{"action":"start","x":"` + strings.Repeat("a", maxBody) + `"}}`, 413, "over 1 MiB"},
	} {
		t.Run(name, func(t *testing.T) {
			h := New(Config{Sessions: sessions{tc.err}, APIKeys: []string{key}})
			req := httptest.NewRequest("POST", "/api/sessions/manager", strings.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.wantText) {
				t.Fatalf("%d %s", rec.Code, rec.Body.String())
			}
			if strings.Contains(rec.Body.String(), "disk on fire") {
				t.Fatal("internal detail leaked to the client")
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	for name, tc := range map[string]struct {
		ready func() error
		want  int
	}{
		"no check": {nil, 200},
		"ready":    {func() error { return nil }, 200},
		"down":     {func() error { return errors.New("redis: connection refused") }, 503},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			New(Config{Sessions: sessions{}, Ready: tc.ready}).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != tc.want {
				t.Fatalf("%d %s", rec.Code, rec.Body.String())
			}
		})
	}
}

func TestListStatusFilter(t *testing.T) {
	h := New(Config{Sessions: sessions{}, APIKeys: []string{key}})
	for q, want := range map[string]int{"": 200, "?status=running": 200, "?status=all": 200, "?status=bogus": 400} {
		req := httptest.NewRequest("GET", "/api/sessions"+q, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%q: %d", q, rec.Code)
		}
	}
	_ = http.StatusOK
}

// TestWrongKeysBackOff is issue 12 item 8: wrong bearer keys from one
// address end in 429 with Retry-After (before: 401 for ever), while
// another address with the right key is served.
func TestWrongKeysBackOff(t *testing.T) {
	h := New(Config{Sessions: sessions{}, APIKeys: []string{key}})
	do := func(addr, tok string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/api/sessions", nil)
		req.RemoteAddr = addr
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	codes := map[int]int{}
	var last *httptest.ResponseRecorder
	for i := range 50 {
		last = do("198.51.100.20:4000", fmt.Sprintf("guess-%d", i))
		codes[last.Code]++
	}
	if codes[http.StatusTooManyRequests] == 0 || codes[http.StatusUnauthorized] == 0 || len(codes) != 2 {
		t.Fatalf("answers to 50 wrong keys: %v, want 401s then 429s", codes)
	}
	if last.Code != http.StatusTooManyRequests || last.Header().Get("Retry-After") == "" ||
		!strings.Contains(last.Body.String(), "too many wrong API keys") {
		t.Fatalf("last answer: %d %q %s", last.Code, last.Header().Get("Retry-After"), last.Body.String())
	}
	if rec := do("198.51.100.21:4000", key); rec.Code != http.StatusOK {
		t.Fatalf("another address with the right key: %d %s", rec.Code, rec.Body.String())
	}
	if rec := do("198.51.100.20:4001", key); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("the guessing address with the right key during its wait: %d", rec.Code)
	}
}
