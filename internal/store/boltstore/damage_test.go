package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehabrtc/rehabrtc/internal/session"
	"go.etcd.io/bbolt"
)

// filled writes a store of n records (several pages) and closes it.
func filled(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rehabrtc.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := &session.Record{Name: strings.Repeat("n", 300), Status: session.StatusInProgress, Port: 8080 + i}
		if err := s.Create(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// openAndList is what serve does at start: Open, then List (Restore).
// It must never panic; it returns the first error.
func openAndList(path string) (n int, err error) {
	s, err := Open(path)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	recs, err := s.List(context.Background())
	return len(recs), err
}

func wantDamaged(t *testing.T, path string, err error) {
	t.Helper()
	var de *DamagedError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T), want a *DamagedError", err, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, path) || !strings.Contains(msg, "move the file aside") {
		t.Fatalf("not one line naming the file and what to do: %q", msg)
	}
}

// TestDamagedPages is issue 12 item 5: a page overwritten panicked in
// List (from Manager.Restore) before. Every page from 2 on (0 and 1 are
// the two meta pages) is overwritten in turn: Open fails with a
// *DamagedError, or the page was unused and every record is still there.
func TestDamagedPages(t *testing.T) {
	const n = 60
	orig := filled(t, n)
	data, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	damagedPages := 0
	for p := 2; p*page < len(data); p++ {
		bad := bytes.Clone(data)
		copy(bad[p*page:(p+1)*page], bytes.Repeat([]byte{0xA5, 0x5A, 0x00, 0xFF}, page/4))
		path := filepath.Join(t.TempDir(), "rehabrtc.db")
		os.WriteFile(path, bad, 0o600)
		got, err := openAndList(path)
		switch {
		case err != nil:
			wantDamaged(t, path, err)
			damagedPages++
		case got != n:
			t.Fatalf("page %d overwritten: %d records listed without an error, want %d or an error", p, got, n)
		}
		if _, cerr := Check(path); (cerr == nil) != (err == nil) {
			t.Fatalf("page %d: Check says %v, Open says %v", p, cerr, err)
		}
	}
	if damagedPages == 0 {
		t.Fatal("no overwritten page was found damaged: the test damaged nothing")
	}
}

// TestCutShort is issue 12 item 5: a file cut short panicked with
// "invalid freelist page" in Open before.
func TestCutShort(t *testing.T) {
	orig := filled(t, 60)
	data, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{len(data) - 1, len(data) / 2, 3*4096 + 100, 2 * 4096, 4096 + 7, 100, 1} {
		path := filepath.Join(t.TempDir(), "rehabrtc.db")
		os.WriteFile(path, data[:size], 0o600)
		if _, err := openAndList(path); err != nil {
			wantDamaged(t, path, err)
		} else if size < len(data)/2 {
			t.Fatalf("cut to %d of %d bytes: opened without an error", size, len(data))
		}
	}
}

// TestNotAStore: a file that is not bbolt at all, or bbolt without our
// bucket, is damaged too.
func TestNotAStore(t *testing.T) {
	for name, content := range map[string][]byte{
		"text":    []byte("this is not a database\n"),
		"zeros":   make([]byte, 4*4096),
		"garbage": bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 8192),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rehabrtc.db")
			os.WriteFile(path, content, 0o600)
			_, err := openAndList(path)
			wantDamaged(t, path, err)
		})
	}
}

// TestOpenedStates is issue 12 item 5: a 0-byte file started with no
// sessions and no word; Open now says it was empty, or new, or how many
// records it held.
func TestOpenedStates(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "new.db")
	empty := filepath.Join(dir, "empty.db")
	os.WriteFile(empty, nil, 0o600)
	existing := filled(t, 3)
	for path, want := range map[string]Summary{
		fresh:    {State: StateNew},
		empty:    {State: StateEmpty},
		existing: {State: StateExisting, Sessions: 3},
	} {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Opened()
		s.Close()
		if got.State != want.State || got.Sessions != want.Sessions {
			t.Errorf("%s: %+v, want %+v", filepath.Base(path), got, want)
		}
	}
}

func TestBackup(t *testing.T) {
	path := filled(t, 5)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	// Online: from the open store, while it is in use.
	var online bytes.Buffer
	if _, err := s.WriteTo(&online); err != nil {
		t.Fatal(err)
	}
	// Offline on a file in use: refused with a clear word, not a hang.
	if _, err := Backup(path, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("offline backup of an open store: %v", err)
	}
	s.Close()
	var offline bytes.Buffer
	if _, err := Backup(path, &offline); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"online": online.Bytes(), "offline": offline.Bytes()} {
		copyPath := filepath.Join(t.TempDir(), name+".db")
		os.WriteFile(copyPath, b, 0o600)
		sum, err := Check(copyPath)
		if err != nil || sum.Sessions != 5 {
			t.Fatalf("%s backup: %+v %v", name, sum, err)
		}
	}
	empty := filepath.Join(t.TempDir(), "none.db")
	if _, err := Backup(empty, &bytes.Buffer{}); err == nil {
		t.Fatal("backup of a missing store succeeded")
	}
}

// BenchmarkCheck is what the check costs every start, for a store of
// 1,000 sessions.
func BenchmarkCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), "rehabrtc.db")
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error { // one transaction: one fsync, not 1,000
		for i := range 1000 {
			data, _ := json.Marshal(&session.Record{ID: int64(i + 1), Name: strings.Repeat("n", 100), Port: i})
			if err := tx.Bucket(bucketSessions).Put(key(int64(i+1)), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	for b.Loop() {
		if sum, err := Check(path); err != nil || sum.Sessions != 1000 {
			b.Fatal(sum, err)
		}
	}
}
