package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// ready is /readyz: not while stopping or draining (a load balancer sends
// new pages elsewhere while this node hands its sessions over), and the
// Redis subscription must be live when configured.
func (s *server) ready() error {
	if s.stopping.Load() {
		return errStopping
	}
	return s.ot.Ready()
}

var errStopping = errors.New("shutting down")

// redisLogs routes go-redis's own log lines (it keeps a process-wide
// logger) into ours.
type redisLogs struct{ log *slog.Logger }

func (l redisLogs) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}
