package main

import "testing"

// A stopping or draining node says so on /readyz, so that a load balancer
// sends new pages to the other nodes while this one hands its sessions over.
func TestNotReadyWhileStopping(t *testing.T) {
	var s server // no OpenTera Redis: ready unless stopping
	if err := s.ready(); err != nil {
		t.Fatalf("running: %v", err)
	}
	s.stopping.Store(true)
	if err := s.ready(); err == nil {
		t.Fatal("stopping, yet ready")
	}
}
