package boltstore

import (
	"os"
	"path/filepath"
	"strings"
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

// A tree survives a reopen; DeleteTree deletes a key and what is below it,
// and nothing else ("a/" is not below "a" for "ab").
func TestTree(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "rehabrtc.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tr := s.Tree("test")
	if err := tr.DeleteTree(ctx, "none"); err != nil { // before the bucket exists
		t.Fatal(err)
	}
	for _, k := range []string{"a", "a/1", "a/2", "ab", "ab/1", "b", "b/1"} {
		if err := tr.Put(ctx, k, []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tr = s.Tree("test")
	keys := func() string {
		var out []string
		if err := tr.ForEach(ctx, func(k string, v []byte) error {
			if string(v) != "v"+k {
				t.Errorf("%s = %q", k, v)
			}
			out = append(out, k)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, " ")
	}
	if got := keys(); got != "a a/1 a/2 ab ab/1 b b/1" {
		t.Fatalf("after reopen: %s", got)
	}
	if err := tr.DeleteTree(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := tr.DeleteTree(ctx, "b/1"); err != nil {
		t.Fatal(err)
	}
	if got := keys(); got != "ab ab/1 b" {
		t.Fatalf("after deletes: %s", got)
	}
}
