package opentera

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// StartupTimeout bounds the start-up contract: the wait for Redis (the
// service.<key> entry comes before anything else) and for the main server.
const StartupTimeout = 30 * time.Second

// Interop is what OpenTera interop adds to a server when Redis is
// configured: the Redis client, the Service (RPC, events, presence) and,
// when Backend is configured too, the main server's REST client. Its
// methods are nil-safe: a nil *Interop is a server without OpenTera.
type Interop struct {
	rdb     *redis.Client
	svc     *Service
	backend *Backend // nil: records stay in the embedded store
	store   *Store   // set by Records when backend is not nil
}

// Open applies OpenTera's start-up contract to cfg (spec §2.1, §7.1.1):
// read service.<Service.name> from Redis, take service_uuid, let
// service_port and service_hostname replace Service.port and
// Service.hostname (as OpenTera does) and validate cfg again; then, with a
// Backend, check the main server's certificate. It returns nil without
// Redis. The caller closes the result.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Interop, error) {
	if !cfg.RedisEnabled() {
		if cfg.BackendEnabled() {
			return nil, errors.New("config: Backend.hostname is set but Redis.hostname is not: " +
				"the main server only accepts a service token signed with the secret it keeps in Redis")
		}
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, StartupTimeout)
	defer cancel()
	rc := cfg.Redis
	rdb := redis.NewClient(&redis.Options{
		Addr: net.JoinHostPort(rc.Hostname, strconv.Itoa(rc.Port)), Username: rc.Username, Password: rc.Password,
		DB: rc.DB, ClientName: "rehabrtc_" + cfg.Service.Name,
	})
	it, err := open(ctx, cfg, rdb, log)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	return it, nil
}

func open(ctx context.Context, cfg *config.Config, rdb *redis.Client, log *slog.Logger) (*Interop, error) {
	info, err := LoadServiceInfo(ctx, rdb, cfg.Service.Name)
	if err != nil {
		return nil, fmt.Errorf("OpenTera startup (Redis %s): %w", rdb.Options().Addr, err)
	}
	cfg.Service.Port, cfg.Service.Hostname = info.Port, info.Hostname
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("with service_port %d and service_hostname %q from Redis: %w", info.Port, info.Hostname, err)
	}
	log.Info("OpenTera service registration read from Redis", "key", cfg.Service.Name, "uuid", info.UUID,
		"service", cfg.ServiceAddr())
	it := &Interop{rdb: rdb}
	if cfg.BackendEnabled() {
		if it.backend, err = openBackend(ctx, cfg.Backend, NewServiceToken(rdb, info.UUID), log); err != nil {
			return nil, err
		}
	}
	it.svc = New(Config{
		Redis: rdb, ServiceKey: cfg.Service.Name, ServiceUUID: info.UUID, Backend: it.backend,
		BusyReply: cfg.RehabRTC.BusyReply, Logger: log.With("component", "opentera"),
	})
	return it, nil
}

// openBackend builds the main server's client and checks its certificate.
func openBackend(ctx context.Context, bc config.Backend, tokens TokenSource, log *slog.Logger) (*Backend, error) {
	conf := BackendConfig{Host: bc.Hostname, Port: bc.Port, VerifyTLS: bc.VerifyTLS, Tokens: tokens,
		Logger: log.With("component", "backend")}
	if !bc.VerifyTLS {
		log.Warn("Backend.verify_tls is false: the main server's certificate is not checked (development only)")
		return NewBackend(conf), nil
	}
	if bc.CAFile != "" {
		pool, err := LoadCAFile(bc.CAFile)
		if err != nil {
			return nil, err
		}
		conf.RootCAs = pool
	}
	b := NewBackend(conf)
	if err := b.CheckTLS(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// Records returns the store of session records: local, or the main
// server's database mirrored into local when a Backend is configured.
func (it *Interop) Records(local session.Store, log *slog.Logger) session.Store {
	if it == nil || it.backend == nil {
		return local
	}
	it.store = NewStore(it.backend, local, log.With("component", "store"))
	it.svc.rows = it.store
	return it.store
}

// Events is the Manager's EventSink: nil without OpenTera.
func (it *Interop) Events() session.EventSink {
	if it == nil {
		return nil
	}
	return it.svc
}

// DBName is the embedded database file: a separate one when the main
// server owns the records, so its ids never meet standalone ones.
func (it *Interop) DBName() string {
	if it != nil && it.backend != nil {
		return "opentera.db"
	}
	return "rehabrtc.db"
}

// RunOnce makes the RPCs handled by one node of a cluster only (see
// Config.Once). Call it before Start.
func (it *Interop) RunOnce(once func(ctx context.Context, key string) (bool, error)) {
	if it != nil {
		it.svc.cfg.Once = once
	}
}

// Start starts taking RPCs and presence events for sessions.
func (it *Interop) Start(sessions Sessions) {
	if it != nil {
		it.svc.Start(sessions)
	}
}

// Stop stops taking RPCs and presence events and publishes the events
// still queued; call it before the Manager shuts down.
func (it *Interop) Stop(ctx context.Context) {
	if it != nil {
		it.svc.Close(ctx)
	}
}

// Close releases the Redis client.
func (it *Interop) Close() {
	if it != nil {
		it.rdb.Close()
	}
}

// Ready is for /readyz: the Redis subscription must be live.
func (it *Interop) Ready() error {
	if it == nil {
		return nil
	}
	return it.svc.Ready()
}
