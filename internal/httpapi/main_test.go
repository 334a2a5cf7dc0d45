package httpapi

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind (servers, handlers).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
