package e2e

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/web"
)

// TestProtocolJS runs the unit tests of the DOM-free client library (protocol.js) in Chromium,
// against a fake WebSocket: join, events, reconnect with backoff, final close codes.
func TestProtocolJS(t *testing.T) {
	needBrowser(t)
	mux := http.NewServeMux()
	mux.Handle("/static/", http.StripPrefix("/static", web.StaticHandler()))
	mux.Handle("/test/", http.StripPrefix("/test/", http.FileServer(http.Dir("testdata"))))
	srv := httptest.NewServer(web.SecurityHeaders(mux))
	defer srv.Close()

	p := openPage(t, "protocol-js", srv.URL+"/test/index.html")
	res, err := eval[map[string]string](p, `import('/test/protocol_test.js').then(m => m.run())`)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) == 0 {
		t.Fatal("no JavaScript test ran")
	}
	for name, r := range res {
		if r != "ok" {
			t.Errorf("%s: %s", name, r)
		}
	}
}
