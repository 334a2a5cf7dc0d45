package cluster

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/redistest"
)

func benchNode(b *testing.B) *Node {
	b.Helper()
	return benchJoin(b, redistest.Start(b, redistest.Options{AOF: true}), "a")
}

func benchJoin(b *testing.B, srv *redistest.Server, id string) *Node {
	b.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { rdb.Close() })
	n, err := Join(b.Context(), rdb, Config{Name: "bench", NodeID: id, LeaseTime: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close(context.Background()) })
	return n
}

// BenchmarkRenew1000Leases is one beat's renewal of a node holding 1,000
// session leases (two compare-and-extend calls of 500), against a local
// redis-server with AOF fsynced on every write.
func BenchmarkRenew1000Leases(b *testing.B) {
	n := benchNode(b)
	for id := range int64(1000) {
		if _, err := n.Acquire(b.Context(), id+1); err != nil {
			b.Fatal(err)
		}
	}
	calls0, usec0 := redisCost(b, n.rdb)
	for b.Loop() {
		n.renew(b.Context())
	}
	calls1, usec1 := redisCost(b, n.rdb)
	b.ReportMetric(float64(calls1-calls0)/float64(b.N), "redis-cmds/op")
	b.ReportMetric(float64(usec1-usec0)/float64(b.N), "redis-µs/op")
	for _, l := range n.leases {
		if l.Err() != nil {
			b.Fatal(l.Err())
		}
	}
}

// BenchmarkAcquireReleaseLease is a session's home being taken and given
// back.
func BenchmarkAcquireReleaseLease(b *testing.B) {
	n := benchNode(b)
	for b.Loop() {
		l, err := n.Acquire(b.Context(), 1)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPortAcquireRelease takes and gives back a port from a pool of
// 1,000 of which 900 are held by other live nodes.
func BenchmarkPortAcquireRelease(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{AOF: true})
	n := benchJoin(b, srv, "a")
	others := benchJoin(b, srv, "b").Ports(10000, 1000)
	for range 900 {
		if _, err := others.Acquire(); err != nil {
			b.Fatal(err)
		}
	}
	p := n.Ports(10000, 1000)
	for b.Loop() {
		port, err := p.Acquire()
		if err != nil {
			b.Fatal(err)
		}
		p.Release(port)
	}
}

// BenchmarkTakeover is a session's home cut from Redis, timed from the cut
// until the holder is told (told-ms) and until another node holds the
// lease (takeover-ms), with a 1 s lease; p50 and p99 over the iterations
// (run it with -benchtime=20x).
func BenchmarkTakeover(b *testing.B) {
	const lease = time.Second
	srv := redistest.Start(b, redistest.Options{AOF: true})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { rdb.Close() })
	taker, err := Join(b.Context(), rdb, Config{Name: "bench", NodeID: "taker", LeaseTime: lease})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { taker.Close(context.Background()) })
	var told, taken []time.Duration
	i := 0
	for b.Loop() {
		i++
		proxy := redistest.NewProxy(b, srv.Addr)
		crdb := redis.NewClient(&redis.Options{Addr: proxy.Addr, MaxRetries: -1,
			DialTimeout: 100 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
		home, err := Join(b.Context(), crdb, Config{Name: "bench", NodeID: fmt.Sprintf("home%d", i), LeaseTime: lease})
		if err != nil {
			b.Fatal(err)
		}
		l, err := home.Acquire(b.Context(), 1)
		if err != nil {
			b.Fatal(err)
		}
		cut := time.Now()
		proxy.Cut()
		var toldAt time.Time
		for {
			if toldAt.IsZero() && closed(l.Lost()) {
				toldAt = time.Now()
			}
			if l2, err := taker.Acquire(b.Context(), 1); err == nil {
				taken = append(taken, time.Since(cut))
				if toldAt.IsZero() {
					b.Fatalf("taken over before the home was told")
				}
				told = append(told, toldAt.Sub(cut))
				_ = l2.Release(b.Context())
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		home.Close(context.Background())
		crdb.Close()
	}
	b.StopTimer()
	for name, d := range map[string][]time.Duration{"told": told, "takeover": taken} {
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Milliseconds()), name+"-p50-ms")
		b.ReportMetric(float64(d[len(d)*99/100].Milliseconds()), name+"-p99-ms")
	}
}
