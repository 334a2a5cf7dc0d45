package opentera_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/rehabrtc/rehabrtc/internal/cluster"
	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/opentera/pb"
	"github.com/rehabrtc/rehabrtc/internal/opentera/teratest"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// countingSessions stands for a node's session Manager: what is under test
// is which node runs a call, not what the call does.
type countingSessions struct{ calls *atomic.Int64 }

func (c countingSessions) Manage(context.Context, *session.Request) (*session.Reply, error) {
	c.calls.Add(1)
	return &session.Reply{Status: "stopped"}, nil
}

func (c countingSessions) List(context.Context, bool) ([]*session.View, error) { return nil, nil }

// TestRPCOncePerCluster: three nodes' Services all receive every RPC on
// the same Redis (as OpenTera publishes it); with Once (a cluster), each
// call is run and answered by exactly one of them.
func TestRPCOncePerCluster(t *testing.T) {
	r := teratest.StartRedis(t)
	var calls atomic.Int64
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for range 3 {
		rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
		svc := opentera.New(opentera.Config{Redis: rdb, ServiceKey: serviceKey, ServiceUUID: serviceUUID, Logger: log,
			Once: func(ctx context.Context, key string) (bool, error) {
				return cluster.Once(ctx, rdb, "t", key, time.Minute)
			}})
		svc.Start(countingSessions{&calls})
		deadline := time.Now().Add(10 * time.Second)
		for svc.Ready() != nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			svc.Close(ctx)
			rdb.Close()
		})
	}
	ctx := t.Context()
	const n = 20
	replyTo := "RedisRPCClient.once-test"
	ps := r.Client.Subscribe(ctx, replyTo)
	defer ps.Close()
	if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"session_manage": map[string]any{"action": "stop", "id_session": 1}})
	for i := range n {
		payload, _ := proto.Marshal(pb.NewRPCCall("session_manage", int64(i), replyTo, string(body)))
		if err := r.Client.Publish(ctx, "service."+serviceKey+".rpc", payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	replies := map[uint64]int{}
	for {
		m, err := ps.ReceiveTimeout(ctx, time.Second) // a second after the last reply: no late duplicate
		if err != nil {
			break
		}
		var env struct {
			ID uint64 `json:"id"`
		}
		if msg, ok := m.(*redis.Message); ok && json.Unmarshal([]byte(msg.Payload), &env) == nil {
			replies[env.ID]++
		}
	}
	if len(replies) != n || calls.Load() != n {
		t.Fatalf("%d calls answered, %d runs; want %d of each", len(replies), calls.Load(), n)
	}
	for id, c := range replies {
		if c != 1 {
			t.Fatalf("call %d answered %d times", id, c)
		}
	}
}
