package main

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
	"github.com/rehabrtc/rehabrtc/internal/opentera"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// startupTimeout bounds the wait for Redis at startup (OpenTera's contract
// needs the service.<key> entry before anything else).
const startupTimeout = 30 * time.Second

// openTera is what OpenTera interop adds to the server when Redis is
// configured: the Redis client, the Service (RPC, events, presence) and,
// when Backend is configured too, the main server's REST client.
type openTera struct {
	rdb     *redis.Client
	svc     *opentera.Service
	backend *opentera.Backend // nil: records stay in the embedded store
}

// newOpenTera applies OpenTera's startup contract (spec §2.1, §7.1.1):
// read service.<Service.name> from Redis, take service_uuid, and let
// service_port and service_hostname override Service.port and
// Service.hostname, as OpenTera does. nil without Redis.
func newOpenTera(cfg *config.Config, log *slog.Logger) (*openTera, error) {
	if !cfg.RedisEnabled() {
		if cfg.BackendEnabled() {
			return nil, errors.New("config: Backend.hostname is set but Redis.hostname is not: " +
				"the main server only accepts a service token signed with the secret it keeps in Redis")
		}
		return nil, nil
	}
	rc := cfg.Redis
	rdb := redis.NewClient(&redis.Options{
		Addr: net.JoinHostPort(rc.Hostname, strconv.Itoa(rc.Port)), Username: rc.Username, Password: rc.Password,
		DB: rc.DB, ClientName: "rehabrtc_" + cfg.Service.Name,
	})
	ctx, cancel := context.WithTimeout(context.Background(), startupTimeout)
	defer cancel()
	info, err := opentera.LoadServiceInfo(ctx, rdb, cfg.Service.Name)
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("OpenTera startup (Redis %s): %w", rdb.Options().Addr, err)
	}
	cfg.Service.Port, cfg.Service.Hostname = info.Port, info.Hostname
	if err := cfg.Validate(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("with service_port %d and service_hostname %q from Redis: %w", info.Port, info.Hostname, err)
	}
	log.Info("OpenTera service registration read from Redis", "key", cfg.Service.Name, "uuid", info.UUID,
		"service", cfg.ServiceAddr())
	ot := &openTera{rdb: rdb}
	if cfg.BackendEnabled() {
		if !cfg.Backend.VerifyTLS {
			log.Warn("Backend.verify_tls is false: the main server's certificate is not checked (development only)")
		}
		ot.backend = opentera.NewBackend(opentera.BackendConfig{
			Host: cfg.Backend.Hostname, Port: cfg.Backend.Port, VerifyTLS: cfg.Backend.VerifyTLS,
			Tokens: opentera.NewServiceToken(rdb, info.UUID), Logger: log.With("component", "backend"),
		})
	}
	ot.svc = opentera.New(opentera.Config{
		Redis: rdb, ServiceKey: cfg.Service.Name, ServiceUUID: info.UUID, Backend: ot.backend,
		BusyReply: cfg.RehabRTC.BusyReply, Logger: log.With("component", "opentera"),
	})
	return ot, nil
}

// records returns the store of session records: the embedded one, or the
// main server's database mirrored into it when a Backend is configured.
func (ot *openTera) records(local session.Store, log *slog.Logger) session.Store {
	if ot == nil || ot.backend == nil {
		return local
	}
	return opentera.NewStore(ot.backend, local, log.With("component", "store"))
}

// events is the Manager's EventSink: nil without OpenTera.
func (ot *openTera) events() session.EventSink {
	if ot == nil {
		return nil
	}
	return ot.svc
}

// dbName is the embedded database file: a separate one when the main
// server owns the records, so its ids never meet standalone ones.
func (ot *openTera) dbName() string {
	if ot != nil && ot.backend != nil {
		return "opentera.db"
	}
	return "rehabrtc.db"
}

func (s *server) startOpenTera() {
	if s.ot != nil {
		s.ot.svc.Start(s.mgr)
	}
}

// stopOpenTera stops taking RPCs and presence events and publishes the
// events still queued; call it before the Manager shuts down.
func (s *server) stopOpenTera(ctx context.Context) {
	if s.ot != nil {
		s.ot.svc.Close(ctx)
	}
}

// close releases the Redis client; nil-safe.
func (ot *openTera) close() {
	if ot != nil {
		ot.rdb.Close()
	}
}

// ready is /readyz: the Redis subscription must be live when configured.
func (s *server) ready() error {
	if s.ot == nil {
		return nil
	}
	return s.ot.svc.Ready()
}

// redisLogs routes go-redis's own log lines (it keeps a process-wide
// logger) into ours.
type redisLogs struct{ log *slog.Logger }

func (l redisLogs) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}
