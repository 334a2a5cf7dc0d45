package boltstore

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/storetest"
)

func TestContract(t *testing.T) {
	open := func(t *testing.T) session.Store {
		s, err := Open(filepath.Join(t.TempDir(), "rehabrtc.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	reopen := func(t *testing.T, old session.Store) session.Store {
		bs := old.(*Store)
		path := bs.db.Path()
		if err := bs.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	storetest.Run(t, open, reopen)
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rehabrtc.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600: the file holds session keys", fi.Mode().Perm())
	}
}

func TestOpenLockedFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rehabrtc.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("second Open of a locked file succeeded")
	}
}
