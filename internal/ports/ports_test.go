package ports

import (
	"errors"
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

func TestPool(t *testing.T) {
	p := New(8080, 3)
	var got []int
	for range 3 {
		port, err := p.Acquire()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, port)
	}
	if got[0] != 8080 || got[1] != 8081 || got[2] != 8082 {
		t.Fatalf("ports = %v", got)
	}
	if _, err := p.Acquire(); !errors.Is(err, session.ErrNoPort) {
		t.Fatalf("exhausted pool: err = %v", err)
	}
	p.Release(8081)
	if port, _ := p.Acquire(); port != 8081 {
		t.Fatalf("after release got %d", port)
	}
	p.Release(8080)
	p.Release(8082)
	// Round-robin: the port after the last one handed out comes first.
	if port, _ := p.Acquire(); port != 8082 {
		t.Fatalf("round robin: got %d, want 8082", port)
	}
	if p.InUse() != 2 {
		t.Fatalf("InUse = %d", p.InUse())
	}
}

func TestClaim(t *testing.T) {
	for name, tc := range map[string]struct {
		port    int
		wantErr bool
	}{
		"free":  {8081, false},
		"taken": {8080, true},
		"below": {8079, true},
		"above": {8083, true},
	} {
		t.Run(name, func(t *testing.T) {
			p := New(8080, 3)
			if err := p.Claim(8080); err != nil {
				t.Fatal(err)
			}
			err := p.Claim(tc.port)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Claim(%d) = %v", tc.port, err)
			}
			if err != nil && !errors.Is(err, session.ErrPortInUse) {
				t.Fatalf("error %v is not ErrPortInUse", err)
			}
		})
	}
	p := New(8080, 1)
	p.Release(9999) // foreign: ignored
	p.Release(8080) // free: ignored
	if _, err := p.Acquire(); err != nil {
		t.Fatal(err)
	}
}
