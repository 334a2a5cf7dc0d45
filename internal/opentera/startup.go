package opentera

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys and channels of OpenTera's protocol (spec §4.2, §4.3).
const (
	ServicePrefix      = "service."           // + service key: the service's row, JSON
	ServiceTokenKey    = "ServiceTokenAPIKey" // HS256 secret of service JWTs
	UserManagerEvents  = "module.TeraServer.UserManagerModule.events"
	UserManagerMessage = "module.TeraServer.UserManagerModule.messages"
)

// ServiceInfo is what the main server publishes about this service in the
// Redis key service.<key> (TeraService.to_json()); only the fields used.
type ServiceInfo struct {
	UUID     string `json:"service_uuid"`
	Key      string `json:"service_key"`
	Hostname string `json:"service_hostname"`
	Port     int    `json:"service_port"`
}

// ErrNoServiceInfo means the main server has not registered this service.
var ErrNoServiceInfo = errors.New("service not registered in Redis")

// LoadServiceInfo reads service.<key>, retrying while Redis cannot be
// reached until ctx ends. A missing key or one without service_uuid is an
// error at once, as in OpenTera: the main server writes it before it
// launches its services.
func LoadServiceInfo(ctx context.Context, rdb redis.Cmdable, key string) (*ServiceInfo, error) {
	name := ServicePrefix + key
	delay := 100 * time.Millisecond
	for {
		raw, err := rdb.Get(ctx, name).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			return nil, fmt.Errorf("%w: key %q is missing from Redis: is OpenTera's main server running, and does it know a service with key %q (Service.name)?", ErrNoServiceInfo, name, key)
		case err == nil:
			return parseServiceInfo(name, raw)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read Redis key %q: %w", name, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func parseServiceInfo(name string, raw []byte) (*ServiceInfo, error) {
	var info ServiceInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, fmt.Errorf("key %q in Redis: not the JSON of a service: %v", name, err)
	}
	if info.UUID == "" {
		return nil, fmt.Errorf("%w: key %q in Redis has no service_uuid", ErrNoServiceInfo, name)
	}
	if info.Port < 1 || info.Port > 65535 {
		return nil, fmt.Errorf("key %q in Redis: service_port %d is not a port", name, info.Port)
	}
	return &info, nil
}
