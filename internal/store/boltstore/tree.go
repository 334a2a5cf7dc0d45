package boltstore

import (
	"bytes"
	"context"

	"go.etcd.io/bbolt"
)

// Tree is one bucket of small records whose keys form a tree with "/":
// "a" and "a/b" and "a/c" are deleted together by DeleteTree("a"). It is
// what the consultation API keeps (ehrc.Store: a namespace and its rooms).
// The bucket is created on first write, so files written before it open
// unchanged. Every write is one fsynced transaction.
type Tree struct {
	db     *bbolt.DB
	bucket []byte
}

// Tree returns the tree kept in bucket name.
func (s *Store) Tree(name string) *Tree {
	return &Tree{db: s.db, bucket: []byte(name)}
}

// Put writes one record.
func (t *Tree) Put(_ context.Context, key string, value []byte) error {
	return t.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(t.bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), value)
	})
}

// DeleteTree deletes key and every key below it, in one transaction.
// Deleting what does not exist is not an error.
func (t *Tree) DeleteTree(_ context.Context, key string) error {
	return t.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(t.bucket)
		if b == nil {
			return nil
		}
		if err := b.Delete([]byte(key)); err != nil {
			return err
		}
		prefix := []byte(key + "/")
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// ForEach calls fn for every record in key order; value is valid during
// the call only.
func (t *Tree) ForEach(_ context.Context, fn func(key string, value []byte) error) error {
	return t.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(t.bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
	})
}
