package cluster

import (
	"context"
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
	b.ResetTimer()
	for b.Loop() {
		n.renew(b.Context())
	}
	b.StopTimer()
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
