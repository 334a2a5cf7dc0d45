package redisstore

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/rehabrtc/rehabrtc/internal/redistest"
	"github.com/rehabrtc/rehabrtc/internal/session"
)

// The running set follows every write of a record, plain or fenced, and a
// refused fenced write changes it no more than the record; ListRunning
// reads it alone, in id order.
func TestRunningSet(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	s := New(rdb, "rehabrtc")
	ctx := t.Context()
	for _, step := range []struct {
		what string
		do   func() error
		want []int64
	}{
		{"nothing yet", func() error { return nil }, []int64{}},
		{"create running", func() error { return s.Create(ctx, &session.Record{Name: "a", Running: true}) }, []int64{1}},
		{"create ended", func() error { return s.Create(ctx, &session.Record{Name: "b"}) }, []int64{1}},
		{"put running, own id", func() error { return s.Put(ctx, &session.Record{ID: 10, Running: true}) }, []int64{1, 10}},
		{"put running again", func() error { return s.Put(ctx, &session.Record{ID: 10, Running: true}) }, []int64{1, 10}},
		{"fenced put running", func() error { return s.PutFenced(ctx, &session.Record{ID: 2, Running: true}, 5) }, []int64{1, 2, 10}},
		{"fenced put ends it", func() error { return s.PutFenced(ctx, &session.Record{ID: 2}, 6) }, []int64{1, 10}},
		{"late fenced put refused", func() error {
			if err := s.PutFenced(ctx, &session.Record{ID: 2, Running: true}, 5); !errors.Is(err, ErrFenced) {
				return errors.New("late write not fenced")
			}
			return nil
		}, []int64{1, 10}},
		{"put ends it", func() error { return s.Put(ctx, &session.Record{ID: 1}) }, []int64{10}},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		got, err := s.ListRunning(ctx)
		if err != nil || !slices.Equal(got, step.want) {
			t.Fatalf("after %s: ListRunning = %v, %v; want %v", step.what, got, err, step.want)
		}
	}
	if err := rdb.SAdd(ctx, s.RunningKey(), "x").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListRunning(ctx); err == nil {
		t.Fatal("a damaged running set reads without an error")
	}
	if other, _ := New(rdb, "other").ListRunning(ctx); len(other) != 0 {
		t.Fatalf("another prefix sees %v", other)
	}
}

// A store written without the running set (an older version: the record
// and its index entry only) gets it from IndexRunning, once.
func TestIndexRunning(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t)
	s := New(rdb, "rehabrtc")
	ctx := t.Context()
	old := func(id int64, running bool) {
		t.Helper()
		data, _ := json.Marshal(&session.Record{ID: id, Name: "old", Running: running})
		if err := rdb.Set(ctx, s.recordKey(id), data, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.ZAdd(ctx, s.indexKey(), redis.Z{Score: float64(id), Member: id}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for id := range int64(600) { // more than one batch
		old(id+1, id%100 == 7)
	}
	if err := rdb.SAdd(ctx, s.RunningKey(), 2).Err(); err != nil { // wrong: 2 has ended
		t.Fatal(err)
	}
	if err := s.IndexRunning(ctx); err != nil {
		t.Fatal(err)
	}
	want := []int64{8, 108, 208, 308, 408, 508}
	if got, err := s.ListRunning(ctx); err != nil || !slices.Equal(got, want) {
		t.Fatalf("after IndexRunning: %v, %v; want %v", got, err, want)
	}
	old(601, true) // written by an old node after the upgrade: not indexed again
	if err := s.IndexRunning(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListRunning(ctx); !slices.Equal(got, want) {
		t.Fatalf("second IndexRunning rebuilt: %v", got)
	}
}
