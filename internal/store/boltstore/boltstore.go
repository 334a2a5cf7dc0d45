// Package boltstore keeps session records in one bbolt file in the data
// directory: the embedded default store of a single node.
package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

var bucketSessions = []byte("sessions")

// Store is a session.Store on bbolt. Every write is one fsynced
// transaction, so a record survives kill -9 once Put returns.
type Store struct {
	db     *bbolt.DB
	path   string
	opened Summary
}

var _ session.Store = (*Store)(nil)

// Open checks the database file (see [Check]; a damaged file is a
// *DamagedError, never a panic), then opens it for writing, creating it
// with mode 0600 when missing: it holds the sessions' keys. [Store.Opened]
// says whether it was new, empty or existing, for the log.
func Open(path string) (*Store, error) {
	sum, err := Check(path)
	if err != nil {
		return nil, err
	}
	var db *bbolt.DB
	err = guard(path, func() error {
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockWait})
		if err != nil {
			return openError(path, err)
		}
		return db.Update(func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucketSessions)
			return err
		})
	})
	if err != nil {
		if db != nil {
			db.Close()
		}
		return nil, err
	}
	return &Store{db: db, path: path, opened: sum}, nil
}

// Opened is what Open found: a new, empty or existing file, and how many
// records it held.
func (s *Store) Opened() Summary { return s.opened }

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func key(id int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	return b[:]
}

// Create assigns the bucket's next sequence (never reused, even after
// deletes) and writes r, in one transaction.
func (s *Store) Create(ctx context.Context, r *session.Record) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		r.ID = int64(id)
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode session: %w", err)
		}
		return b.Put(key(r.ID), data)
	})
}

// Put writes r whole.
func (s *Store) Put(ctx context.Context, r *session.Record) error {
	if r.ID <= 0 {
		return fmt.Errorf("put session: invalid id %d", r.ID)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode session %d: %w", r.ID, err)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSessions).Put(key(r.ID), data)
	})
}

// Get reads one record.
func (s *Store) Get(ctx context.Context, id int64) (*session.Record, error) {
	var r *session.Record
	err := s.view(func(tx *bbolt.Tx) error {
		data := tx.Bucket(bucketSessions).Get(key(id))
		if data == nil {
			return fmt.Errorf("session %d: %w", id, session.ErrNotFound)
		}
		r = new(session.Record)
		return decode(id, data, r)
	})
	return r, err
}

// List reads every record in id order.
func (s *Store) List(ctx context.Context) ([]*session.Record, error) {
	var out []*session.Record
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			r := new(session.Record)
			if err := decode(int64(binary.BigEndian.Uint64(k)), v, r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// view is db.View that turns a panic on a page damaged since Open into a
// *DamagedError.
func (s *Store) view(f func(tx *bbolt.Tx) error) error {
	return guard(s.path, func() error { return s.db.View(f) })
}

func decode(id int64, data []byte, r *session.Record) error {
	if err := json.Unmarshal(data, r); err != nil {
		return fmt.Errorf("decode session %d: %w", id, err)
	}
	return nil
}
