package teratest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Msg is one message seen on Redis.
type Msg struct {
	Channel string
	Payload []byte
}

// Listener records what a service publishes on the channels the main
// server listens to: websocket.* (PSUBSCRIBE) and the UserManager's
// messages channel.
type Listener struct {
	ps *redis.PubSub
	ch chan Msg
	wg sync.WaitGroup
}

// Listen subscribes and returns once both subscriptions are confirmed. It
// is closed by t.Cleanup.
func Listen(t testing.TB, rdb *redis.Client) *Listener {
	t.Helper()
	ctx := context.Background()
	ps := rdb.PSubscribe(ctx, "websocket.*")
	if err := ps.Subscribe(ctx, "module.TeraServer.UserManagerModule.messages"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
			t.Fatalf("listener subscription: %v", err)
		}
	}
	l := &Listener{ps: ps, ch: make(chan Msg, 1024)}
	l.wg.Go(l.read)
	t.Cleanup(func() {
		ps.Close()
		l.wg.Wait()
	})
	return l
}

func (l *Listener) read() {
	for {
		m, err := l.ps.Receive(context.Background())
		if errors.Is(err, redis.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if msg, ok := m.(*redis.Message); ok {
			l.ch <- Msg{Channel: msg.Channel, Payload: []byte(msg.Payload)}
		}
	}
}

// Next returns the next message, failing the test after timeout.
func (l *Listener) Next(t testing.TB, timeout time.Duration) Msg {
	t.Helper()
	select {
	case m := <-l.ch:
		return m
	case <-time.After(timeout):
		t.Fatalf("no message within %s", timeout)
		return Msg{}
	}
}

// Take returns the next n messages.
func (l *Listener) Take(t testing.TB, n int, timeout time.Duration) []Msg {
	t.Helper()
	out := make([]Msg, 0, n)
	deadline := time.Now().Add(timeout)
	for len(out) < n {
		select {
		case m := <-l.ch:
			out = append(out, m)
		case <-time.After(time.Until(deadline)):
			t.Fatalf("got %d messages within %s, want %d: %v", len(out), timeout, n, channels(out))
		}
	}
	return out
}

// Quiet fails the test if a message arrives within d.
func (l *Listener) Quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-l.ch:
		t.Fatalf("unexpected message on %s", m.Channel)
	case <-time.After(d):
	}
}

func channels(ms []Msg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Channel
	}
	return out
}
