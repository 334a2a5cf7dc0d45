package boltstore

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind (bbolt's, the contract suite's).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
