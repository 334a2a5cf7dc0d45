package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/redistest"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/redisstore"
)

// scanHomes hides Lost: a Manager with it claims as before the claim by
// lost node (every running session of the store, each lease tried).
type scanHomes struct{ session.Homes }

// scanStore hides ListRunning: the running sessions come from List, every
// record of the history read.
type scanStore struct{ session.Store }

// redisCost is Redis's own count of commands and CPU (INFO commandstats).
func redisCost(b *testing.B, rdb redis.UniversalClient) (calls, usec int64) {
	b.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		_, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_info") {
			continue
		}
		for _, f := range strings.Split(stats, ",") {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				calls += n
			case "usec":
				usec += n
			}
		}
	}
	return calls, usec
}

// BenchmarkClaimPeriod is one claim period of one node with nothing lost,
// on a cluster of 10 nodes whose 9 others hold 100 sessions each, and
// 10,000 ended sessions kept: "scan" as before (every record read, every
// running session's lease tried), "lost" by lost node, and "sweep" the
// sweep one node runs every 30 s. It reports Redis's commands and CPU
// (µs, INFO commandstats) per period.
func BenchmarkClaimPeriod(b *testing.B) {
	const others, each, history = 9, 100, 10000
	srv := redistest.Start(b, redistest.Options{AOF: true})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { rdb.Close() })
	store := redisstore.New(rdb, "bench")
	join := func(id string) *Node {
		n, err := Join(b.Context(), rdb, Config{Name: "bench", NodeID: id, LeaseTime: time.Minute, Running: store.RunningKey()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close(context.Background()) })
		return n
	}
	for i := range int64(history + others*each) {
		if err := store.Put(b.Context(), &session.Record{ID: i + 1, Name: "s", Port: 8080, Running: i >= history}); err != nil {
			b.Fatal(err)
		}
	}
	for o := range others {
		n := join(fmt.Sprintf("other%d", o))
		for i := range int64(each) {
			if _, err := n.Acquire(b.Context(), history+1+int64(o*each)+i); err != nil {
				b.Fatal(err)
			}
		}
	}
	me := join("me")
	homes := me.Homes("secret").WithSweepEvery(time.Hour)
	if _, err := homes.Lost(b.Context()); err != nil { // its first call sweeps: not a period's cost
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		homes session.Homes
		store session.Store
		sweep bool
	}{
		{"scan", scanHomes{homes}, scanStore{store}, false},
		{"lost", homes, store, false},
		{"sweep", homes, store, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := session.NewManager(session.Config{Store: tc.store, Homes: tc.homes, ServiceKey: "bench"})
			defer m.Shutdown(context.Background())
			calls0, usec0 := redisCost(b, rdb)
			for b.Loop() {
				var err error
				n := 0
				if tc.sweep {
					n, err = homes.sweep(b.Context())
				} else {
					n, err = m.Claim(b.Context())
				}
				if err != nil || n != 0 {
					b.Fatalf("nothing to claim: %d, %v", n, err)
				}
			}
			calls1, usec1 := redisCost(b, rdb)
			b.ReportMetric(float64(calls1-calls0)/float64(b.N), "redis-cmds/op")
			b.ReportMetric(float64(usec1-usec0)/float64(b.N), "redis-µs/op")
		})
	}
}
