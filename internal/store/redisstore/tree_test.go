package redisstore

import (
	"strings"
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/redistest"
)

// The same cases as boltstore's TestTree: a tree survives a restart of
// redis-server (AOF); DeleteTree deletes a key and what is below it, and
// nothing else ("ab" is not below "a").
func TestTree(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t, redistest.Options{AOF: true})
	tr := New(srv.Client(t), "rehabrtc").Tree("test")
	if err := tr.DeleteTree(ctx, "none"); err != nil { // before the hash exists
		t.Fatal(err)
	}
	for _, k := range []string{"b/1", "a", "a/1", "ab/1", "a/2", "ab", "b", "a*/[x]"} {
		if err := tr.Put(ctx, k, []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	srv.Restart()
	tr = New(srv.Client(t), "rehabrtc").Tree("test")
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
	if got := keys(); got != "a a*/[x] a/1 a/2 ab ab/1 b b/1" {
		t.Fatalf("after restart: %s", got)
	}
	for _, k := range []string{"a", "b/1", "a*"} {
		if err := tr.DeleteTree(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if got := keys(); got != "ab ab/1 b" {
		t.Fatalf("after deletes: %s", got)
	}
	other := New(srv.Client(t), "rehabrtc").Tree("other")
	if err := other.ForEach(ctx, func(k string, _ []byte) error { t.Errorf("other tree has %s", k); return nil }); err != nil {
		t.Fatal(err)
	}
}
