// Package storetest is the contract every session.Store implementation
// passes: each implementation's tests call Run.
package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Run checks the Store contract. open returns a fresh, empty store; reopen
// (may be nil) returns the same store after a close, to check durability.
func Run(t *testing.T, open func(t *testing.T) session.Store, reopen func(t *testing.T, s session.Store) session.Store) {
	ctx := context.Background()
	t.Run("CreateAssignsIncreasingIDs", func(t *testing.T) {
		s := open(t)
		a, b := sample(0), sample(0)
		if err := s.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
		if a.ID <= 0 || b.ID <= a.ID {
			t.Fatalf("ids %d then %d", a.ID, b.ID)
		}
		got, err := s.Get(ctx, b.ID)
		if err != nil || got.ID != b.ID || got.UUID != b.UUID {
			t.Fatalf("Get after Create = %+v, %v", got, err)
		}
	})
	t.Run("GetMissing", func(t *testing.T) {
		s := open(t)
		if _, err := s.Get(ctx, 42); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("PutGetList", func(t *testing.T) {
		s := open(t)
		r1, r2 := sample(1), sample(2)
		for _, r := range []*session.Record{r2, r1} {
			if err := s.Put(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Get(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r1) {
			t.Fatalf("Get = %+v\nwant %+v", got, r1)
		}
		all, err := s.List(ctx)
		if err != nil || len(all) != 2 || all[0].ID != 1 || all[1].ID != 2 {
			t.Fatalf("List = %v, %v", all, err)
		}
	})
	t.Run("PutReplaces", func(t *testing.T) {
		s := open(t)
		r := sample(7)
		_ = s.Put(ctx, r)
		r.Running, r.Port, r.Tokens = false, 0, nil
		r.Members.Users = []string{}
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, 7)
		if got.Running || got.Port != 0 || len(got.Tokens) != 0 || len(got.Members.Users) != 0 {
			t.Fatalf("not replaced: %+v", got)
		}
	})
	t.Run("PutRejectsBadID", func(t *testing.T) {
		if err := open(t).Put(ctx, &session.Record{}); err == nil {
			t.Fatal("Put of id 0 succeeded")
		}
	})
	if reopen != nil {
		t.Run("Durable", func(t *testing.T) {
			s := open(t)
			r := sample(0)
			if err := s.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			r.Name = "changed"
			if err := s.Put(ctx, r); err != nil {
				t.Fatal(err)
			}
			s = reopen(t, s)
			got, err := s.Get(ctx, r.ID)
			if err != nil || !reflect.DeepEqual(got, r) {
				t.Fatalf("after reopen: %+v, %v", got, err)
			}
			next := sample(0)
			if err := s.Create(ctx, next); err != nil || next.ID <= r.ID {
				t.Fatalf("Create after reopen: id %d, %v (reused?)", next.ID, err)
			}
		})
	}
}

func sample(id int64) *session.Record {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	uid := int64(3)
	return &session.Record{
		ID: id, UUID: "3f2504e0-4f89-41d3-9a0c-0305e82c3301", Name: "Session [2026.1]",
		TypeID: 1, Creator: session.Creator{UserID: &uid, UUID: "3f2504e0-4f89-41d3-9a0c-0305e82c3302", Kind: session.KindUser},
		StartTime: at, Status: session.StatusInProgress, Parameters: []byte(`{"a":1}`),
		Members: session.Members{Users: []string{"3f2504e0-4f89-41d3-9a0c-0305e82c3302"}, Participants: []string{}, Devices: []string{}},
		Events:  []session.Event{{ID: 1, Session: id, Type: session.EventStart, Time: at, Context: "VideoRehabService"}},
		Running: true, Port: 8080, LastStart: at, MediaOnSFU: true,
		Tokens: []session.Token{{Kind: session.KindUser, Key: "k1"}, {Kind: session.KindUser, UUID: "3f2504e0-4f89-41d3-9a0c-0305e82c3302", Key: "k2"}},
	}
}
