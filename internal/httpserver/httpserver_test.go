package httpserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs New(h, l) on a loopback port until the test ends.
func serve(t *testing.T, h http.Handler, l Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(h, l)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	})
	return ln.Addr().String()
}

// TestSlowBodyIsCut is issue 12 item 10: ten clients announcing a 200 KB
// body and sending one byte at a time. Before (only ReadHeaderTimeout),
// they held their connections for as long as they kept dripping; now each
// handler's read fails at the body deadline and the connection is closed.
func TestSlowBodyIsCut(t *testing.T) {
	readErr := make(chan error, 10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	})
	addr := serve(t, h, Limits{Body: 300 * time.Millisecond})
	closed := make(chan error, 10)
	stop := make(chan struct{})
	defer close(stop)
	for range 10 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n")
		go func() { // drip a byte every 50 ms until the server hangs up
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					closed <- errors.New("test ended first")
					return
				case <-tick.C:
				}
				if _, err := c.Write([]byte("a")); err != nil {
					closed <- nil
					return
				}
			}
		}()
	}
	deadline := time.After(20 * time.Second) // a bound on the test, not the figure tested
	for i := range 10 {
		select {
		case err := <-readErr:
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("handler %d read the whole body (err %v): no deadline", i, err)
			}
		case <-deadline:
			t.Fatalf("%d of 10 slow bodies still being read", 10-i)
		}
	}
	for i := range 10 {
		select {
		case err := <-closed:
			if err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatalf("%d of 10 slow connections still open", 10-i)
		}
	}
}

// A handler that takes longer than the body deadline after reading the
// body keeps its connection and context: the deadline is lifted at EOF.
func TestDeadlineLiftedAfterBody(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		select {
		case <-time.After(600 * time.Millisecond): // twice the body deadline
		case <-r.Context().Done():
			http.Error(w, "context cancelled", 500)
			return
		}
		io.WriteString(w, "got "+string(b))
	})
	addr := serve(t, h, Limits{Body: 300 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 2 { // the same keep-alive connection twice
		fmt.Fprintf(c, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "got hello" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
}

func TestBodySize(t *testing.T) {
	var got int
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "too big", http.StatusRequestEntityTooLarge)
			return
		}
		got = len(b)
	})
	addr := serve(t, h, Limits{MaxBody: 1000})
	for name, tc := range map[string]struct {
		body    io.Reader
		length  int64
		want    int
		wantLen int
	}{
		"small":                   {strings.NewReader("abc"), 3, 200, 3},
		"at the limit":            {strings.NewReader(strings.Repeat("a", 1000)), 1000, 200, 1000},
		"announced over":          {strings.NewReader(strings.Repeat("a", 1001)), 1001, 413, 0},
		"chunked over":            {io.MultiReader(strings.NewReader(strings.Repeat("a", 2000))), -1, 413, 0},
		"chunked under the limit": {io.MultiReader(strings.NewReader("abcd")), -1, 200, 4},
	} {
		t.Run(name, func(t *testing.T) {
			got = 0
			req, _ := http.NewRequest("POST", "http://"+addr+"/", tc.body)
			req.ContentLength = tc.length
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want || got != tc.wantLen {
				t.Fatalf("%d (read %d), want %d (%d)", resp.StatusCode, got, tc.want, tc.wantLen)
			}
		})
	}
	http.DefaultClient.CloseIdleConnections()
}

// GET requests, WebSocket upgrades among them, get no deadline at all.
func TestNoBodyNoDeadline(t *testing.T) {
	h := BoundBodies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != http.NoBody {
			t.Errorf("body replaced on a GET")
		}
	}), 10, time.Millisecond)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}

func TestNewSetsTimeouts(t *testing.T) {
	srv := New(http.NotFoundHandler(), Limits{})
	d := Defaults()
	if srv.ReadHeaderTimeout != d.ReadHeader || srv.IdleTimeout != d.Idle ||
		srv.MaxHeaderBytes != d.MaxHeader || srv.ReadTimeout != 0 {
		t.Fatalf("%+v", srv)
	}
}
