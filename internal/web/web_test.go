package web

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestStaticHandler(t *testing.T) {
	h := SecurityHeaders(http.StripPrefix("/static", StaticHandler()))
	for name, tt := range map[string]struct {
		path, contentType string
		status            int
	}{
		"module script":  {"/static/protocol.js", "text/javascript; charset=utf-8", 200},
		"stylesheet":     {"/static/session.css", "text/css; charset=utf-8", 200},
		"translation":    {"/static/i18n/fr.json", "application/json; charset=utf-8", 200},
		"icon":           {"/static/icon.svg", "image/svg+xml", 200},
		"example page":   {"/static/example/", "text/html; charset=utf-8", 200},
		"example script": {"/static/example/example.js", "text/javascript; charset=utf-8", 200},
		"missing":        {"/static/nope.js", "", 404},
		"directory":      {"/static/i18n/", "", 404},
		"dot-dot":        {"/static/../web.go", "", 404},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.status {
				t.Fatalf("GET %s: status %d, want %d", tt.path, rec.Code, tt.status)
			}
			if rec.Header().Get("Content-Security-Policy") != CSP {
				t.Errorf("no CSP on %s", tt.path)
			}
			if tt.status != 200 {
				return
			}
			if got := rec.Header().Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q", got)
			}
			if rec.Header().Get("ETag") == "" {
				t.Error("no ETag")
			}
		})
	}
}

func TestStaticHandlerRevalidates(t *testing.T) {
	h := http.StripPrefix("/static", StaticHandler())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/static/session.js", nil))
	req := httptest.NewRequest("GET", "/static/session.js", nil)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	rec2 := httptest.NewRecorder()
	h.ServeHTTP(rec2, req)
	if rec2.Code != http.StatusNotModified {
		t.Fatalf("conditional GET: status %d, want 304", rec2.Code)
	}
	rec3 := httptest.NewRecorder()
	h.ServeHTTP(rec3, httptest.NewRequest("POST", "/static/session.js", nil))
	if rec3.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: status %d", rec3.Code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	SecurityHeaders(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	want := map[string]string{
		"Referrer-Policy":            "no-referrer",
		"X-Content-Type-Options":     "nosniff",
		"Permissions-Policy":         "camera=(self), microphone=(self), display-capture=(self)",
		"Cross-Origin-Opener-Policy": "same-origin",
	}
	for k, v := range want {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := rec.Header().Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'self'", "base-uri 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP lacks %q: %s", d, csp)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") {
		t.Errorf("CSP allows too much: %s", csp)
	}
}

// The pages must run under the CSP and on a closed network: no inline script or style,
// no absolute URL to another origin, assets referenced relatively.
func TestPagesFollowCSP(t *testing.T) {
	inlineScript := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	external := regexp.MustCompile(`(?:src|href)="(?:https?:)?//`)
	absolute := regexp.MustCompile(`(?:src|href)="/`)
	err := fs.WalkDir(Static(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".html") || strings.HasSuffix(p, ".js") || strings.HasSuffix(p, ".css")) {
			return err
		}
		b, _ := fs.ReadFile(Static(), p)
		s := string(b)
		if strings.HasSuffix(p, ".html") {
			if inlineScript.MatchString(s) {
				t.Errorf("%s: inline script", p)
			}
			if strings.Contains(s, "<style") || strings.Contains(s, " style=") {
				t.Errorf("%s: inline style", p)
			}
			if strings.Contains(s, " on") && regexp.MustCompile(`\son[a-z]+="`).MatchString(s) {
				t.Errorf("%s: inline event handler", p)
			}
			if absolute.MatchString(s) {
				t.Errorf("%s: absolute asset URL (use static/…)", p)
			}
		}
		if external.MatchString(s) || strings.Contains(s, "@import url(http") {
			t.Errorf("%s: loads something from another origin", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPages(t *testing.T) {
	for name, page := range map[string][]byte{"session": SessionPage(), "dashboard": DashboardPage()} {
		if !bytes.Contains(page, []byte(`<script type="module" src="static/`)) {
			t.Errorf("%s page does not load its module relatively", name)
		}
	}
}

func TestDeniedPage(t *testing.T) {
	for lang, want := range map[string][]string{
		"en":    {`lang="en"`, "This link is not valid any more"},
		"en-CA": {"This link is not valid any more"},
		"fr":    {`lang="fr"`, "Ce lien n’est plus valide"},
		"":      {"Ce lien n’est plus valide", "This link is not valid any more"},
		"<x>":   {"Ce lien", "This link"},
	} {
		page := string(DeniedPage(lang))
		for _, w := range want {
			if !strings.Contains(page, w) {
				t.Errorf("DeniedPage(%q) lacks %q", lang, w)
			}
		}
		if strings.Contains(page, "<x>") {
			t.Errorf("DeniedPage(%q) echoes its input", lang)
		}
	}
}

func TestPreferredLang(t *testing.T) {
	for name, tt := range map[string]struct{ query, accept, want string }{
		"query wins":           {"?lang=en", "fr-CA,fr", "en"},
		"accept-language":      {"", "de-DE,fr;q=0.8,en;q=0.5", "fr"},
		"unknown":              {"?lang=de", "de", ""},
		"nothing":              {"", "", ""},
		"bad query falls back": {"?lang=xx", "en-US", "en"},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/webrtc/8080/participants"+tt.query, nil)
			if tt.accept != "" {
				r.Header.Set("Accept-Language", tt.accept)
			}
			if got := PreferredLang(r); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// Every key used by the French page exists in English and the other way round.
func TestTranslationsMatch(t *testing.T) {
	keys := func(name string) map[string]bool {
		b, err := fs.ReadFile(Static(), name)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, k := range regexp.MustCompile(`(?m)^\s*"([^"]+)":`).FindAllStringSubmatch(string(b), -1) {
			m[k[1]] = true
		}
		return m
	}
	en, fr := keys("i18n/en.json"), keys("i18n/fr.json")
	for k := range en {
		if !fr[k] {
			t.Errorf("fr.json lacks %q", k)
		}
	}
	for k := range fr {
		if !en[k] {
			t.Errorf("en.json lacks %q", k)
		}
	}
	// Keys used as string literals by the scripts must exist.
	literal := regexp.MustCompile(`\bt\('([a-zA-Z][\w.-]*)'`)
	_ = fs.WalkDir(Static(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, ".js") {
			return err
		}
		b, _ := fs.ReadFile(Static(), p)
		for _, m := range literal.FindAllStringSubmatch(string(b), -1) {
			if !en[m[1]] {
				t.Errorf("%s uses unknown key %q", p, m[1])
			}
		}
		return nil
	})
	// Keys written in the markup must exist.
	for _, page := range []string{"session.html", "dashboard.html"} {
		b, _ := fs.ReadFile(Static(), page)
		for _, m := range regexp.MustCompile(`data-i18n(?:-label|-placeholder)?="([^"]+)"`).FindAllStringSubmatch(string(b), -1) {
			if !en[m[1]] {
				t.Errorf("%s uses unknown key %q", page, m[1])
			}
		}
	}
}
