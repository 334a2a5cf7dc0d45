// Package redisstore keeps session records in Redis, shared by every node
// of a cluster: a session.Store on go-redis's UniversalClient (one server,
// Sentinel or Cluster).
//
// Every key of one store carries the hash tag {prefix}, so in a Redis
// Cluster they all live in one slot and the scripts that write several of
// them stay atomic. Durability is Redis's: see docs/scale-out.md.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Store is a session.Store on Redis. A record is one JSON string; an
// index (a sorted set of ids) lists them in id order; ids come from INCR
// and are never reused.
type Store struct {
	rdb    redis.UniversalClient
	prefix string // "{name}", the hash tag of every key
}

var _ session.Store = (*Store)(nil)

// New returns the store kept under the key prefix name (e.g. "rehabrtc"),
// so several deployments can share one Redis. The caller owns rdb.
func New(rdb redis.UniversalClient, name string) *Store {
	return &Store{rdb: rdb, prefix: "{" + name + "}"}
}

func (s *Store) seqKey() string   { return s.prefix + ":session:seq" }
func (s *Store) indexKey() string { return s.prefix + ":sessions" }

// RunningKey is the set of the ids of the running sessions, kept with the
// records (every write adds or removes its id by the record's Running
// flag): what a cluster's claim loop reads instead of the whole history
// (cluster.Config.Running).
func (s *Store) RunningKey() string { return s.prefix + ":sessions:running" }
func (s *Store) recordKey(id int64) string {
	return s.prefix + ":session:" + strconv.FormatInt(id, 10)
}

// putRecord is the write both put scripts share: KEYS record, index,
// sequence, running set; ARGV id, JSON, running ("1" or "0"). It writes
// the record, its index entry and its running-set membership at once, and
// raises the id sequence to at least its id, so a record put with an id of
// its own (an import, a test) is never overwritten by a later Create.
const putRecord = `
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])
if ARGV[3] == '1' then redis.call('SADD', KEYS[4], ARGV[1]) else redis.call('SREM', KEYS[4], ARGV[1]) end
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
if seq < tonumber(ARGV[1]) then redis.call('SET', KEYS[3], ARGV[1]) end
return 1
`

var putScript = redis.NewScript(putRecord)

// fencedPutScript is putScript behind a fence: KEYS as putScript's plus
// the session's fence; ARGV as putScript's plus the token. It writes
// nothing and returns 0 when the fence has seen a newer token, else raises
// the fence to token.
var fencedPutScript = redis.NewScript(`
local fence = tonumber(redis.call('GET', KEYS[5]) or '0')
if fence > tonumber(ARGV[4]) then return 0 end
redis.call('SET', KEYS[5], ARGV[4])
` + putRecord)

// ErrFenced is the error of a write stamped with a fencing token older
// than one the session's record has already been written with: the
// writer has lost the session's lease to another node.
var ErrFenced = errors.New("stale fencing token: another node is now the session's home")

// PutFenced writes r like Put, unless a write with a newer fencing token
// (cluster.Lease.Token) has been made for this session: then it writes
// nothing and fails with ErrFenced. A node that lost a lease while a write
// was on its way cannot overwrite what the new home wrote.
func (s *Store) PutFenced(ctx context.Context, r *session.Record, token int64) error {
	if r.ID <= 0 {
		return fmt.Errorf("put session: invalid id %d", r.ID)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode session %d: %w", r.ID, err)
	}
	keys := []string{s.recordKey(r.ID), s.indexKey(), s.seqKey(), s.RunningKey(), s.recordKey(r.ID) + ":fence"}
	ok, err := fencedPutScript.Run(ctx, s.rdb, keys, r.ID, data, runningArg(r), token).Int()
	if err != nil {
		return fmt.Errorf("put session %d: %w", r.ID, err)
	}
	if ok == 0 {
		return fmt.Errorf("put session %d with token %d: %w", r.ID, token, ErrFenced)
	}
	return nil
}

// Create takes the next id with INCR, then writes r. A crash between the
// two leaves a gap in the ids, never a reused one.
func (s *Store) Create(ctx context.Context, r *session.Record) error {
	id, err := s.rdb.Incr(ctx, s.seqKey()).Result()
	if err != nil {
		return fmt.Errorf("create session: next id: %w", err)
	}
	r.ID = id
	return s.Put(ctx, r)
}

// Put writes r whole, atomically with its index entry.
func (s *Store) Put(ctx context.Context, r *session.Record) error {
	if r.ID <= 0 {
		return fmt.Errorf("put session: invalid id %d", r.ID)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode session %d: %w", r.ID, err)
	}
	keys := []string{s.recordKey(r.ID), s.indexKey(), s.seqKey(), s.RunningKey()}
	if err := putScript.Run(ctx, s.rdb, keys, r.ID, data, runningArg(r)).Err(); err != nil {
		return fmt.Errorf("put session %d: %w", r.ID, err)
	}
	return nil
}

func runningArg(r *session.Record) string {
	if r.Running {
		return "1"
	}
	return "0"
}

// Get reads one record.
func (s *Store) Get(ctx context.Context, id int64) (*session.Record, error) {
	data, err := s.rdb.Get(ctx, s.recordKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("session %d: %w", id, session.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get session %d: %w", id, err)
	}
	return decode(id, data)
}

// listBatch bounds the keys of one MGET, so a long history is read in
// round trips of a reasonable size.
const listBatch = 256

// List reads every record in id order: the index, then the records in
// batches. Records are never deleted, so every indexed id has a record.
func (s *Store) List(ctx context.Context) ([]*session.Record, error) {
	ids, err := s.rdb.ZRange(ctx, s.indexKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	out := make([]*session.Record, 0, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), listBatch)
		batch, err := s.readBatch(ctx, ids[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, batch...)
		ids = ids[n:]
	}
	return out, nil
}

var _ session.RunningLister = (*Store)(nil)

// ListRunning returns the ids of the running sessions, in increasing
// order, from the running set alone: no record of the history is read.
func (s *Store) ListRunning(ctx context.Context) ([]int64, error) {
	vals, err := s.rdb.SMembers(ctx, s.RunningKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("list running sessions: %w", err)
	}
	ids := make([]int64, 0, len(vals))
	for _, v := range vals {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list running sessions: bad id %q in %s", v, s.RunningKey())
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

func (s *Store) readBatch(ctx context.Context, ids []string) ([]*session.Record, error) {
	keys := make([]string, len(ids))
	nums := make([]int64, len(ids))
	for i, v := range ids {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list sessions: bad id %q in %s", v, s.indexKey())
		}
		keys[i], nums[i] = s.recordKey(id), id
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	out := make([]*session.Record, 0, len(vals))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("list sessions: session %d is indexed but has no record", nums[i])
		}
		r, err := decode(nums[i], []byte(str))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func decode(id int64, data []byte) (*session.Record, error) {
	r := new(session.Record)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode session %d: %w", id, err)
	}
	return r, nil
}

// indexRunningScript: KEYS the running set, then records; ARGV their ids.
// Adds each id whose record says running to the set, removes the others:
// atomic with every write of those records.
var indexRunningScript = redis.NewScript(`
for i = 2, #KEYS do
  local ok, r = pcall(cjson.decode, redis.call('GET', KEYS[i]) or 'null')
  if ok and type(r) == 'table' and r.running == true then
    redis.call('SADD', KEYS[1], ARGV[i - 1])
  else
    redis.call('SREM', KEYS[1], ARGV[i - 1])
  end
end
return 1
`)

// IndexRunning builds the running set from the records, once per store: a
// store written by a version that did not keep it (before the claim by
// lost node) gets it on the first start of a node that does. Nodes doing
// it at once do no harm; later calls return at once.
func (s *Store) IndexRunning(ctx context.Context) error {
	done := s.RunningKey() + ":built"
	if n, err := s.rdb.Exists(ctx, done).Result(); err != nil || n == 1 {
		return err
	}
	ids, err := s.rdb.ZRange(ctx, s.indexKey(), 0, -1).Result()
	if err != nil {
		return fmt.Errorf("index running sessions: %w", err)
	}
	for len(ids) > 0 {
		b := ids[:min(len(ids), listBatch)]
		ids = ids[len(b):]
		keys := []string{s.RunningKey()}
		args := make([]any, 0, len(b))
		for _, v := range b {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("index running sessions: bad id %q in %s", v, s.indexKey())
			}
			keys = append(keys, s.recordKey(id))
			args = append(args, id)
		}
		if err := indexRunningScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
			return fmt.Errorf("index running sessions: %w", err)
		}
	}
	if err := s.rdb.Set(ctx, done, "1", 0).Err(); err != nil {
		return fmt.Errorf("index running sessions: %w", err)
	}
	return nil
}
