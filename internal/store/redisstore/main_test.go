package redisstore

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind (go-redis's pools included).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
