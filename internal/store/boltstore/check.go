package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// DamagedError is a store file that cannot be trusted: bbolt's consistency
// check failed, a page or record cannot be read, or the file is not a
// rehabrtc store. Its text is one line naming the file and what to do.
type DamagedError struct {
	Path    string
	Problem string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("store %s is damaged (%s): stop rehabrtc, move the file aside and put a backup in its place "+
		"(made by \"rehabrtc store backup\"), or move it aside alone to start with no sessions", e.Path, e.Problem)
}

func damaged(path string, problem any) *DamagedError {
	p := strings.Join(strings.Fields(fmt.Sprint(problem)), " ") // one line
	if len(p) > 300 {
		p = p[:300] + "…"
	}
	return &DamagedError{Path: path, Problem: p}
}

// State is what Open found.
type State int

// The states of a store file at Open.
const (
	StateExisting State = iota // a store with its records
	StateNew                   // no file: created
	StateEmpty                 // a file of 0 bytes: made a new store (sessions that were in it are gone)
)

// Summary is what Check found in a sound store.
type Summary struct {
	State    State
	Sessions int   // records
	Bytes    int64 // file size
}

// lockWait is how long Check and Open wait for the file lock.
const lockWait = 2 * time.Second

// Check verifies the store file at path without changing it: it opens it
// read-only, runs bbolt's consistency check over every page and decodes
// every record. A damaged file is a *DamagedError, never a panic: bbolt
// panics on some corrupt pages, and a file cut short faults when its
// memory map is read past the end.
func Check(path string) (sum Summary, err error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Summary{State: StateNew}, nil
	case err != nil:
		return Summary{}, fmt.Errorf("store %s: %w", path, err)
	case fi.Size() == 0:
		return Summary{State: StateEmpty}, nil
	}
	sum.Bytes = fi.Size()
	if err := checkBounds(path, fi.Size()); err != nil {
		return Summary{}, err
	}
	err = guard(path, func() error {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockWait})
		if err != nil {
			return openError(path, err)
		}
		defer db.Close()
		return db.View(func(tx *bbolt.Tx) error {
			for err := range tx.Check() {
				return damaged(path, err) // the first problem is enough to say
			}
			sum.Sessions, err = countRecords(path, tx)
			return err
		})
	})
	return sum, err
}

func countRecords(path string, tx *bbolt.Tx) (int, error) {
	b := tx.Bucket(bucketSessions)
	if b == nil {
		return 0, damaged(path, "no sessions bucket: not a rehabrtc store")
	}
	n := 0
	err := b.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return damaged(path, fmt.Sprintf("a record key of %d bytes", len(k)))
		}
		if err := decode(int64(binary.BigEndian.Uint64(k)), v, new(session.Record)); err != nil {
			return damaged(path, err)
		}
		n++
		return nil
	})
	return n, err
}

// openError turns an error of bbolt.Open into ours: a held lock means a
// running service; anything else is damage.
func openError(path string, err error) error {
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("store %s is in use (is rehabrtc running with this data directory? "+
			"\"rehabrtc store backup\" goes through the running service)", path)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && !errors.Is(err, bbolt.ErrInvalid) && !errors.Is(err, bbolt.ErrChecksum) && !errors.Is(err, bbolt.ErrVersionMismatch) {
		return fmt.Errorf("store %s: %w", path, err)
	}
	return damaged(path, err)
}

// guard runs f, turning a panic or a memory fault inside it (bbolt reading
// a corrupt or truncated file) into a *DamagedError.
func guard(path string, f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = damaged(path, p)
		}
	}()
	return f()
}

// WriteTo writes a consistent snapshot of the store to w (one read
// transaction: writers go on meanwhile) and returns its size.
func (s *Store) WriteTo(w io.Writer) (n int64, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Backup copies the store file at path, not in use by a running service,
// to w as a consistent snapshot, after checking it.
func Backup(path string, w io.Writer) (n int64, err error) {
	sum, err := Check(path)
	if err != nil {
		return 0, err
	}
	if sum.State != StateExisting {
		return 0, fmt.Errorf("store %s: no store to back up (the file is missing or empty)", path)
	}
	err = guard(path, func() error {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockWait})
		if err != nil {
			return openError(path, err)
		}
		defer db.Close()
		n, err = (&Store{db: db}).WriteTo(w)
		return err
	})
	return n, err
}
