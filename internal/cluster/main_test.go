package cluster

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind: the nodes' heartbeat loops,
// the fences' timers, go-redis's pools, the test proxies.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
