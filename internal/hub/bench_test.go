package hub

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// BenchmarkRelay measures signal relay through a hub between real WebSocket
// clients over loopback, with 200-byte messages. Each pair is its own
// session; the sender keeps at most `window` messages in flight so the
// bounded queue never overflows. The clients run in the same process and
// use never-cancelled contexts, as the hub does, to keep their own overhead
// low; msgs/s is the total over all pairs.
func BenchmarkRelay(b *testing.B) {
	for _, pairs := range []int{1, 500} {
		b.Run(fmt.Sprintf("pairs=%d", pairs), func(b *testing.B) { benchRelay(b, pairs) })
	}
}

func benchRelay(b *testing.B, pairs int) {
	const window = 128
	type link struct{ from, to *client }
	links := make([]link, pairs)
	for i := range links {
		e := newEnv(b, Config{RateLimit: noLimit, RateBurst: noLimit})
		links[i].from, _ = e.join(b, keyUser, "u", "from")
		links[i].to, _ = e.join(b, keyParticipant, "p", "to")
		links[i].from.expect("peer-joined")
	}
	per := b.N/pairs + 1
	ctx := context.Background()
	b.SetBytes(200)
	b.ResetTimer()
	start, cpu := time.Now(), testutil.CPUTime()
	var wg sync.WaitGroup
	for _, l := range links {
		msg := []byte(`{"type":"signal","to":"` + l.to.id + `","data":{"candidate":"`)
		msg = append(msg, strings.Repeat("c", 200-len(msg)-3)...)
		msg = append(msg, `"}}`...)
		credits := make(chan struct{}, window)
		wg.Go(func() {
			for range per {
				credits <- struct{}{}
				if err := l.from.c.Write(ctx, websocket.MessageText, msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range per {
				_, r, err := l.to.c.Reader(ctx)
				if err == nil {
					_, err = io.Copy(io.Discard, r)
				}
				if err != nil {
					b.Error(err)
					return
				}
				<-credits
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(per*pairs)/time.Since(start).Seconds(), "msgs/s")
	// CPU time is steadier than wall time on a shared machine. It counts
	// both clients and the hub.
	b.ReportMetric(float64((testutil.CPUTime()-cpu).Nanoseconds())/float64(per*pairs), "cpu-ns/msg")
}

// BenchmarkJoin measures connect + join + welcome, in a session that
// already has a peer. It reports the median latency.
func BenchmarkJoin(b *testing.B) {
	e := newEnv(b, Config{})
	e.join(b, keyUser, "u", "Doc")
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		cl, _ := e.join(b, keyParticipant, "", "Pat")
		lat = append(lat, time.Since(start))
		_ = cl.c.Close(websocket.StatusNormalClosure, "")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}

// BenchmarkIdlePeer estimates the memory (live heap + goroutine stacks) of
// one idle joined peer, with 2-peer sessions as in telerehabilitation. The
// clients live in the same process, so it also measures a bare server that
// accepts and only reads: the difference is what the hub adds per peer on
// top of net/http and coder/websocket.
func BenchmarkIdlePeer(b *testing.B) {
	const n = 500
	var withHub, bare [2]float64
	for b.Loop() {
		hubs := make([]*Hub, n/2)
		for i := range hubs {
			hubs[i] = New(Config{Admitter: keyAdmitter{}})
		}
		withHub = idleBytes(b, n, func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
			_ = hubs[i].Serve(r.Context(), c)
		}, func(c *client) { c.expect("welcome") })
		bare = idleBytes(b, n, bareServe, nil)
		closeAll(b, hubs)
	}
	b.ReportMetric(withHub[0]+withHub[1], "B/peer")
	b.ReportMetric(bare[0]+bare[1], "B/bare-conn")
	b.ReportMetric(withHub[0]-bare[0], "B/hub-heap")
	b.ReportMetric(withHub[1]-bare[1], "B/hub-stack")
}

func closeAll(b testing.TB, hubs []*Hub) {
	for _, h := range hubs {
		if err := h.Close(ctxTimeout(b, 10*time.Second), SessionEnded); err != nil {
			b.Fatal(err)
		}
	}
}

func bareServe(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		if _, _, err := c.Read(context.Background()); err != nil {
			return
		}
	}
}

// idleBytes opens n connections to a server running h, two per path /0,
// /1…, sends each a join, calls settle (if any) on each, and returns the
// growth per connection of the live heap and of goroutine stacks.
func idleBytes(b *testing.B, n int, h http.HandlerFunc, settle func(*client)) [2]float64 {
	srv := httptest.NewServer(h)
	defer srv.Close()
	before := memInUse()
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = dialURL(b, srv, "/"+strconv.Itoa(i/2))
		clients[i].send(map[string]any{"type": "join", "key": keyParticipant})
	}
	if settle != nil {
		for _, c := range clients {
			settle(c)
		}
	}
	time.Sleep(200 * time.Millisecond) // let every server goroutine park
	after := memInUse()
	for _, c := range clients {
		_ = c.c.CloseNow()
	}
	return [2]float64{
		float64(after[0]-before[0]) / float64(n),
		float64(after[1]-before[1]) / float64(n),
	}
}

func memInUse() [2]int64 {
	for range 5 { // stacks shrink by half per GC
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return [2]int64{int64(ms.HeapAlloc), int64(ms.StackInuse)}
}
