package opentera_test

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/opentera/teratest"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/boltstore"
	"github.com/rehabrtc/rehabrtc/internal/store/storetest"
)

// TestStoreContract runs the contract of every session.Store against
// opentera.Store: the main server (the teratest double: it needs its
// database and Flask stack, which cannot run here) owns the records, a
// bolt file keeps the local copy, the service token comes from a real
// redis-server. The contract writes records with ids of its own; they are
// created in the main server first, as its other clients would have.
func TestStoreContract(t *testing.T) {
	r := teratest.StartRedis(t)
	r.Set(opentera.ServiceTokenKey, secret)
	type opened struct {
		main *teratest.MainServer
		dir  string
		bolt *boltstore.Store
		rdb  *redis.Client
	}
	stores := map[session.Store]*opened{}
	build := func(t *testing.T, o *opened) session.Store {
		bolt, err := boltstore.Open(filepath.Join(o.dir, "opentera.db"))
		if err != nil {
			t.Fatal(err)
		}
		o.bolt = bolt
		b := opentera.NewBackend(opentera.BackendConfig{
			Host: "127.0.0.1", Port: o.main.Listener.Addr().(*net.TCPAddr).Port, VerifyTLS: true,
			Tokens: opentera.NewServiceToken(o.rdb, serviceUUID), Client: o.main.Client(),
		})
		s := opentera.NewStore(b, bolt, nil)
		stores[s] = o
		t.Cleanup(func() { bolt.Close() }) // a second Close is harmless
		return s
	}
	open := func(t *testing.T) session.Store {
		o := &opened{main: teratest.StartMainServer(t, serviceUUID, secret), dir: t.TempDir(),
			rdb: redis.NewClient(&redis.Options{Addr: r.Addr})}
		t.Cleanup(func() { o.rdb.Close() })
		for _, id := range []int64{1, 2, 7} { // the ids the contract writes without Create
			o.main.AddSession(id, 1)
		}
		return build(t, o)
	}
	reopen := func(t *testing.T, s session.Store) session.Store {
		o := stores[s]
		o.bolt.Close()
		return build(t, o)
	}
	storetest.Run(t, open, reopen)
}
