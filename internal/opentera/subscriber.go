package opentera

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Subscriber timing: silence for pingEvery sends a PING; a second silent
// period means the connection is dead and is replaced. Failures back off
// from minBackoff to maxBackoff.
const (
	pingEvery  = 15 * time.Second
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// subscriber owns one Redis subscription: it reads messages in one
// goroutine (run), hands each to handle, and survives Redis restarts:
// go-redis reconnects and re-subscribes on the next read, and run backs
// off between failed attempts.
type subscriber struct {
	rdb      *redis.Client
	channels []string
	handle   func(*redis.Message)
	log      *slog.Logger
	quit     chan struct{}

	mu     sync.Mutex // guards ps and closed
	ps     *redis.PubSub
	closed bool

	status atomic.Pointer[error] // nil pointer: up; else why not
}

func newSubscriber(rdb *redis.Client, channels []string, handle func(*redis.Message), log *slog.Logger) *subscriber {
	s := &subscriber{rdb: rdb, channels: channels, handle: handle, log: log, quit: make(chan struct{})}
	s.setDown(errors.New("redis: not subscribed yet"))
	return s
}

// state is nil while subscribed, else the reason.
func (s *subscriber) state() error {
	if p := s.status.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *subscriber) setDown(err error) { s.status.Store(&err) }

// open (re)creates the subscription; nil once stopped.
func (s *subscriber) open() *redis.PubSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.ps != nil {
		s.ps.Close()
	}
	s.ps = s.rdb.Subscribe(context.Background()) // no I/O: channels follow
	return s.ps
}

// stop ends run: it closes the subscription, which unblocks the read.
func (s *subscriber) stop() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.quit)
		if s.ps != nil {
			s.ps.Close()
		}
	}
	s.mu.Unlock()
}

func (s *subscriber) run() {
	ps := s.open()
	if ps == nil {
		return
	}
	_ = ps.Subscribe(context.Background(), s.channels...) // recorded even if Redis is down
	backoff, silent, failing := minBackoff, 0, false
	for {
		msg, err := ps.ReceiveTimeout(context.Background(), pingEvery)
		select {
		case <-s.quit:
			return
		default:
		}
		switch {
		case err == nil:
			backoff, silent, failing = minBackoff, 0, false
			s.received(msg)
		case isTimeout(err) && silent == 0 && s.state() == nil: // quiet, but subscribed
			silent++
			_ = ps.Ping(context.Background()) // its answer (or error) arrives on the next read
		case isTimeout(err) && s.state() == nil:
			s.lost(fmt.Errorf("no answer to PING within %s", pingEvery), &failing)
			if ps = s.open(); ps == nil {
				return
			}
			_ = ps.Subscribe(context.Background(), s.channels...)
			silent = 0
		default:
			s.lost(err, &failing)
			if !s.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// received handles one message of the subscription.
func (s *subscriber) received(msg any) {
	switch m := msg.(type) {
	case *redis.Subscription:
		if s.state() != nil && m.Kind == "subscribe" && m.Count == len(s.channels) {
			s.status.Store(nil)
			s.log.Info("redis: subscribed", "channels", s.channels)
		}
	case *redis.Message:
		s.handle(m)
	}
}

// lost records a failure; only the first of a series is a warning.
func (s *subscriber) lost(err error, failing *bool) {
	if !*failing {
		s.log.Warn("redis: subscription down; reconnecting", "err", err)
	} else {
		s.log.Debug("redis: still disconnected", "err", err)
	}
	*failing = true
	s.setDown(fmt.Errorf("redis: %w", err))
}

// sleep waits d, or returns false when stopped.
func (s *subscriber) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.quit:
		return false
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
