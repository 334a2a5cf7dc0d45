package redisstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
)

// Tree is a tree of small records whose keys form a tree with "/" ("a",
// "a/b", "a/c" are deleted together by DeleteTree("a")), kept in one Redis
// hash: what the consultation API keeps (ehrc.Store), shared by the nodes.
type Tree struct {
	rdb redis.UniversalClient
	key string
}

// Tree returns the tree kept under name.
func (s *Store) Tree(name string) *Tree {
	return &Tree{rdb: s.rdb, key: s.prefix + ":tree:" + name}
}

// Put writes one record.
func (t *Tree) Put(ctx context.Context, key string, value []byte) error {
	if err := t.rdb.HSet(ctx, t.key, key, value).Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// deleteTreeScript: KEYS the hash; ARGV key. Deletes key and every field
// that starts with key.."/", at once.
var deleteTreeScript = redis.NewScript(`
local n = redis.call('HDEL', KEYS[1], ARGV[1])
local prefix = ARGV[1] .. '/'
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, #prefix) == prefix then n = n + redis.call('HDEL', KEYS[1], f) end
end
return n
`)

// DeleteTree deletes key and every key below it, atomically. Deleting what
// does not exist is not an error.
func (t *Tree) DeleteTree(ctx context.Context, key string) error {
	if err := deleteTreeScript.Run(ctx, t.rdb, []string{t.key}, key).Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// ForEach calls fn for every record in key order (bytewise, as bbolt's).
func (t *Tree) ForEach(ctx context.Context, fn func(key string, value []byte) error) error {
	all, err := t.rdb.HGetAll(ctx, t.key).Result()
	if err != nil {
		return fmt.Errorf("read %s: %w", t.key, err)
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := fn(k, []byte(all[k])); err != nil {
			return err
		}
	}
	return nil
}
