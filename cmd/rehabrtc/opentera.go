package main

import (
	"context"
	"fmt"
	"log/slog"
)

// ready is /readyz: the Redis subscription must be live when configured.
func (s *server) ready() error { return s.ot.Ready() }

// redisLogs routes go-redis's own log lines (it keeps a process-wide
// logger) into ours.
type redisLogs struct{ log *slog.Logger }

func (l redisLogs) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}
