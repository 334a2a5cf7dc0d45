package cluster

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

type fakeClaimer struct {
	got []int64
	ok  bool
	err error
}

func (f *fakeClaimer) ClaimSession(_ context.Context, id int64) (bool, error) {
	f.got = append(f.got, id)
	return f.ok, f.err
}

// TestClaimHandler: only a POST with the cluster's secret and a session id
// claims; the answer says whether the session now runs here.
func TestClaimHandler(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	for name, tc := range map[string]struct {
		method, auth, body string
		ok                 bool
		err                error
		code               int
		want               string
	}{
		"claimed":        {"POST", "Bearer " + secret, `{"session":7}`, true, nil, 200, `{"claimed":true}`},
		"held elsewhere": {"POST", "Bearer " + secret, `{"session":7}`, false, nil, 200, `{"claimed":false}`},
		"claim failed":   {"POST", "Bearer " + secret, `{"session":7}`, false, errors.New("redis down"), 503, "cannot claim"},
		"wrong secret":   {"POST", "Bearer nope", `{"session":7}`, true, nil, 401, "unauthorized"},
		"no secret":      {"POST", "", `{"session":7}`, true, nil, 401, "unauthorized"},
		"GET":            {"GET", "Bearer " + secret, "", true, nil, 405, "method"},
		"no session":     {"POST", "Bearer " + secret, `{}`, true, nil, 400, "bad request"},
		"negative":       {"POST", "Bearer " + secret, `{"session":-1}`, true, nil, 400, "bad request"},
		"garbage":        {"POST", "Bearer " + secret, `{"session":`, true, nil, 400, "bad request"},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeClaimer{ok: tc.ok, err: tc.err}
			req := httptest.NewRequest(tc.method, ClaimPath, strings.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			ClaimHandler(f, secret).ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("%d %q, want %d %q", rec.Code, rec.Body.String(), tc.code, tc.want)
			}
			if claimed := len(f.got) > 0; claimed != (tc.code == 200 || tc.code == 503) {
				t.Fatalf("claimed %v for a %d answer", f.got, tc.code)
			}
		})
	}
}

// TestDrainHandler: only a POST with the cluster's secret asks the node to drain.
func TestDrainHandler(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	for name, tc := range map[string]struct {
		method, auth string
		code         int
	}{
		"drain":        {"POST", "Bearer " + secret, 202},
		"wrong secret": {"POST", "Bearer " + secret[1:], 401},
		"no secret":    {"POST", "", 401},
		"GET":          {"GET", "Bearer " + secret, 405},
	} {
		t.Run(name, func(t *testing.T) {
			asked := false
			req := httptest.NewRequest(tc.method, DrainPath, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			DrainHandler(func() { asked = true }, secret).ServeHTTP(rec, req)
			if rec.Code != tc.code || asked != (tc.code == 202) {
				t.Fatalf("%d, asked %v; want %d", rec.Code, asked, tc.code)
			}
		})
	}
}
