package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// 50 peers relay signals and broadcasts at the same time; every message
// arrives exactly once, and messages from one sender keep their order.
func TestConcurrentRelay(t *testing.T) {
	const n, signals, broadcasts = 50, 40, 5
	e := newEnv(t, Config{QueueLen: 1024})
	clients := make([]*client, n)
	for i := range clients {
		clients[i], _ = e.join(t, keyParticipant, fmt.Sprint("p", i), fmt.Sprint("peer ", i))
	}
	targets := func(i int) []int { return []int{(i + 1) % n, (i + 7) % n} }
	wantPerPeer := 2*signals + broadcasts*(n-1)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Go(func() { receive(ctx, t, cl, i, n, wantPerPeer) })
		wg.Go(func() {
			for k := range signals {
				for _, to := range targets(i) {
					send(ctx, t, cl, fmt.Sprintf(`{"type":"signal","to":%q,"data":{"seq":%d}}`, clients[to].id, k))
				}
				if k < broadcasts {
					send(ctx, t, cl, fmt.Sprintf(`{"type":"message","topic":"chat","data":{"seq":%d}}`, k))
				}
			}
		})
	}
	wg.Wait()
	if got := len(e.hub.Peers()); got != n {
		t.Fatalf("%d peers left in the hub, want %d", got, n)
	}
}

func send(ctx context.Context, t *testing.T, cl *client, msg string) {
	if err := cl.c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Errorf("write: %v", err)
	}
}

// receive reads until it got want relayed messages, checking per-sender order.
func receive(ctx context.Context, t *testing.T, cl *client, i, n, want int) {
	last := map[string]int{} // "type/from" → last seq
	for got := 0; got < want; {
		_, b, err := cl.c.Read(ctx)
		if err != nil {
			t.Errorf("peer %d after %d of %d messages: %v", i, got, want, err)
			return
		}
		var m struct {
			Type, From string
			Data       struct{ Seq int }
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("invalid JSON %q", b)
			return
		}
		switch m.Type {
		case "peer-joined":
			continue
		case "signal", "message":
		default:
			t.Errorf("peer %d got %s", i, b)
			return
		}
		key := m.Type + "/" + m.From
		if prev, ok := last[key]; ok && m.Data.Seq != prev+1 || !ok && m.Data.Seq != 0 {
			t.Errorf("peer %d: %s seq %d after %d", i, key, m.Data.Seq, prev)
		}
		last[key] = m.Data.Seq
		got++
	}
}
