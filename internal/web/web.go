// Package web holds the browser side of rehabrtc: the session page shared by therapists ("users"),
// patients ("participants") and devices, the clinician dashboard, the DOM-free client library
// protocol.js and a tiny example page, all embedded in the binary with go:embed.
//
// The pages reference their assets with relative URLs ("static/…", "api/…"), so the same files work
// under /webrtc/{port}/ and /rehab/ behind the gateway and at / on the service port. Nothing is loaded
// from a third-party origin: the pages must work on a closed hospital network.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var embedded embed.FS

// Static returns the embedded static files, rooted at the static/ folder ("session.js",
// "i18n/en.json", "example/index.html", …).
func Static() fs.FS {
	sub, err := fs.Sub(embedded, "static")
	if err != nil { // cannot happen: "static" is embedded above
		panic(err)
	}
	return sub
}

// contentTypes pins the types of the files we ship, so that they do not depend on the host's
// mime.types (a module script served as text/plain is refused by browsers under nosniff).
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".json":        "application/json; charset=utf-8",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".webmanifest": "application/manifest+json",
}

// StaticHandler serves Static() with pinned content types, a strong ETag per file and
// "Cache-Control: no-cache" (browsers revalidate, so a new binary's files are picked up at once).
// Paths are relative to static/: mount it with http.StripPrefix, for example
// http.StripPrefix("/webrtc/8080/static/", web.StaticHandler()). Directory listings are not served.
func StaticHandler() http.Handler {
	fsys := Static()
	etags := map[string]string{}
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		etags[p] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if strings.HasSuffix(r.URL.Path, "/") && name != "" {
			name += "/index.html"
		} else if name == "" {
			name = "index.html"
		}
		name = strings.TrimPrefix(name, "/")
		tag, ok := etags[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", tag)
		if ct, ok := contentTypes[path.Ext(name)]; ok {
			h.Set("Content-Type", ct)
		}
		files.ServeHTTP(w, r)
	})
}

// CSP is the Content-Security-Policy of every response: same-origin scripts, styles, media and
// connections only, no inline script or style, no plug-ins, no framing by other sites.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob:; connect-src 'self'; font-src 'self'; manifest-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'self'"

// PermissionsPolicy lets the pages (and only same-origin frames) use the camera, the microphone
// and screen capture.
const PermissionsPolicy = "camera=(self), microphone=(self), display-capture=(self)"

// SecurityHeaders adds the security headers to every response of next: CSP, Referrer-Policy
// no-referrer (invitation keys travel in page URLs), nosniff, Permissions-Policy and COOP.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Permissions-Policy", PermissionsPolicy)
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func mustRead(name string) []byte {
	b, err := fs.ReadFile(embedded, "static/"+name)
	if err != nil { // cannot happen: the file is embedded
		panic(err)
	}
	return b
}

// SessionPage returns the HTML of the session page. It is the same for users, participants and
// devices: the server derives the role from the key and the page learns it from the welcome message.
// Serve it with "Content-Type: text/html; charset=utf-8" and "Cache-Control: no-store".
func SessionPage() []byte { return mustRead("session.html") }

// DashboardPage returns the HTML of the clinician dashboard, served at /rehab/ (and / on the
// service port); it calls the JSON API with relative URLs ("api/sessions").
func DashboardPage() []byte { return mustRead("dashboard.html") }
