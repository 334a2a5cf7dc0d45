package opentera

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
)

// TokenSource hands out the service's JWT for the main server.
type TokenSource interface {
	// Token returns the current token, minting one if needed.
	Token(ctx context.Context) (string, error)
	// Invalidate drops tok if it is still the current token (the main
	// server refused it: its secret was regenerated at its restart).
	Invalidate(tok string)
}

// ServiceToken mints OpenTera's service JWT: HS256 over
// {"iat": <now>, "service_uuid": <uuid>}, without exp, signed with the
// secret the main server keeps in the Redis key ServiceTokenAPIKey. The
// secret is read again at every mint, so a re-mint after a 401 picks up the
// key the main server rotated.
type ServiceToken struct {
	rdb  redis.Cmdable
	uuid string
	now  func() time.Time

	mu  sync.Mutex
	tok string
}

var _ TokenSource = (*ServiceToken)(nil)

// NewServiceToken returns a TokenSource for the service uuid.
func NewServiceToken(rdb redis.Cmdable, serviceUUID string) *ServiceToken {
	return &ServiceToken{rdb: rdb, uuid: serviceUUID, now: time.Now}
}

// Token returns the cached token or mints a new one.
func (t *ServiceToken) Token(ctx context.Context) (string, error) {
	t.mu.Lock()
	tok := t.tok
	t.mu.Unlock()
	if tok != "" {
		return tok, nil
	}
	secret, err := t.rdb.Get(ctx, ServiceTokenKey).Result()
	if errors.Is(err, redis.Nil) || (err == nil && secret == "") {
		return "", fmt.Errorf("key %s is missing from Redis or empty: is OpenTera's main server running?", ServiceTokenKey)
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", ServiceTokenKey, err)
	}
	claims := jwt.MapClaims{"iat": t.now().Unix(), "service_uuid": t.uuid}
	tok, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("sign service token: %w", err)
	}
	t.mu.Lock()
	t.tok = tok
	t.mu.Unlock()
	return tok, nil
}

// Invalidate forgets tok so the next Token mints a fresh one.
func (t *ServiceToken) Invalidate(tok string) {
	t.mu.Lock()
	if t.tok == tok {
		t.tok = ""
	}
	t.mu.Unlock()
}
