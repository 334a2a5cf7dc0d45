package opentera

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Sessions is what the OpenTera adapter needs from the session Manager.
type Sessions interface {
	Manage(ctx context.Context, req *session.Request) (*session.Reply, error)
	List(ctx context.Context, runningOnly bool) ([]*session.View, error)
}

// Config wires a Service. Redis, ServiceKey and ServiceUUID are required.
type Config struct {
	Redis       *redis.Client
	ServiceKey  string   // Service.name, e.g. "VideoRehabService"
	ServiceUUID string   // service_uuid from Redis key service.<key>
	Backend     *Backend // nil: no main server (participant_info answers {})
	BusyReply   bool     // RehabRTC.busy_reply: answer REPLY_BUSY for people busy elsewhere
	Workers     int      // goroutines for RPCs and presence; 0 = 8
	QueueSize   int      // events waiting to be published; 0 = 1024
	Logger      *slog.Logger
	Now         func() time.Time // nil = time.Now
	// Once, when set (a cluster: every node receives every RPC), says
	// whether this node is the one to handle the call named key; the
	// others drop it, so each call runs and is answered once.
	Once func(ctx context.Context, key string) (bool, error)
}

// Service is the OpenTera side of rehabrtc: RPC server, event publisher and
// presence handler. Create it with New (it can take events at once: they
// wait in its queue), then Start it with the Manager, and Close it.
type Service struct {
	cfg      Config
	log      *slog.Logger
	queue    chan item
	dropped  atomic.Int64
	sessions Sessions
	rows     rowSource // the main server's rows of sessions; nil without a Backend

	sub      *subscriber
	pool     *workers
	quit     chan struct{} // closed by Close: the publisher drains and exits
	drainCtx context.Context
	wg       sync.WaitGroup
	started  atomic.Bool
}

// item is one unit of the publisher's work: a session change, or a
// presence re-invitation (Who connected).
type item struct {
	change *session.Change
	who    *session.Identity
}

var _ session.EventSink = (*Service)(nil)

// New returns a Service that is not started yet.
func New(cfg Config) *Service {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: log, queue: make(chan item, cfg.QueueSize), quit: make(chan struct{})}
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// SessionEvent queues a change for publication; it never blocks. A full
// queue drops the change, with an error in the log.
func (s *Service) SessionEvent(c session.Change) {
	s.enqueue(item{change: &c})
}

func (s *Service) enqueue(it item) {
	select {
	case s.queue <- it:
	default:
		n := s.dropped.Add(1)
		s.log.Error("event queue full; dropping an event", "dropped_total", n)
	}
}

// Start subscribes to the RPC and presence channels and starts the
// publisher and the workers. It returns at once: the subscriber connects
// (and reconnects) in the background; Ready tells when it is subscribed.
func (s *Service) Start(sessions Sessions) {
	if !s.started.CompareAndSwap(false, true) {
		return
	}
	s.sessions = sessions
	s.pool = newWorkers(s.cfg.Workers, 4*s.cfg.Workers)
	channels := []string{rpcChannel(s.cfg.ServiceKey)}
	if s.cfg.ServiceUUID != "" && s.cfg.ServiceUUID != s.cfg.ServiceKey {
		channels = append(channels, rpcChannel(s.cfg.ServiceUUID))
	}
	channels = append(channels, UserManagerEvents)
	s.sub = newSubscriber(s.cfg.Redis, channels, s.dispatch, s.log)
	s.wg.Go(s.sub.run)
	s.wg.Go(s.publishLoop)
	s.log.Info("OpenTera interface started", "service", s.cfg.ServiceKey, "uuid", s.cfg.ServiceUUID, "channels", channels)
}

// Close stops listening, finishes the RPCs in progress, publishes the
// events still queued (until ctx ends) and waits for every goroutine.
func (s *Service) Close(ctx context.Context) error {
	if !s.started.CompareAndSwap(true, false) {
		return nil
	}
	s.sub.stop()
	s.pool.close()
	s.drainCtx = ctx
	close(s.quit)
	s.wg.Wait()
	return nil
}

// Ready reports whether the Redis subscription is live, for /readyz.
func (s *Service) Ready() error {
	if s.sub == nil {
		return errors.New("OpenTera interface not started")
	}
	return s.sub.state()
}

// publishLoop publishes queued items in order until Close, then drains.
func (s *Service) publishLoop() {
	for {
		select {
		case it := <-s.queue:
			s.process(it)
		case <-s.quit:
			s.drain()
			return
		}
	}
}

func (s *Service) drain() {
	for {
		select {
		case it := <-s.queue:
			if s.drainCtx.Err() != nil {
				s.log.Warn("shutdown: events left unpublished", "count", len(s.queue)+1)
				return
			}
			s.process(it)
		default:
			return
		}
	}
}
