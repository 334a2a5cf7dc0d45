package session_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The Manager starts goroutines (readiness, endpoint watch); every test
// must leave none behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
