package ehrc

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rehabrtc/rehabrtc/internal/hub"
	"github.com/rehabrtc/rehabrtc/internal/store/boltstore"
)

// The native socket counts connections that have not joined yet per client
// address, as the hub's own endpoint does: over the cap a connection is
// told busy and closed with 1013, and the Counters see the others pending.
func TestNativePendingPerAddress(t *testing.T) {
	counters := new(hub.Counters)
	e := newTestEnv(t, Config{Counters: counters})
	e.createNS("doc")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func() *websocket.Conn {
		t.Helper()
		ws, _, err := websocket.Dial(ctx, e.wsURL(NativePrefix+"doc"), nil)
		if err != nil {
			t.Fatalf("dial native: %v", err)
		}
		return ws
	}
	for range hub.DefaultMaxPendingPerAddr { // all from 127.0.0.1, none joins
		ws := dial()
		t.Cleanup(func() { _ = ws.CloseNow() })
	}
	waitFor(t, "pending connections counted", func() bool {
		return counters.Pending.Load() == hub.DefaultMaxPendingPerAddr
	})
	ws := dial()
	defer ws.CloseNow()
	_, b, err := ws.Read(ctx)
	if err != nil || !strings.Contains(string(b), `"code":"busy"`) {
		t.Fatalf("over the cap: got %q, %v; want busy", b, err)
	}
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != hub.CloseTryAgainLater {
		t.Fatalf("over the cap: closed with %v, want %d", err, hub.CloseTryAgainLater)
	}
}

// The per-address cap on connections without the doctor token counts
// native patients too, not only Socket.IO ones: one address holding room
// ids cannot fill an office.
func TestNativeMembersPerAddress(t *testing.T) {
	e := newTestEnv(t, Config{Limits: Limits{MembersPerAddress: 2}})
	e.createNS("doc")
	for range 2 { // from 127.0.0.1, like the next
		if c, code := e.dialNative("doc", e.createRoom()); c == nil {
			t.Fatalf("patient refused under the cap: %s", code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.wsURL(NativePrefix+"doc"), nil)
	if err != nil {
		t.Fatalf("dial native: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"join","key":"`+e.createRoom()+`"}`)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != hub.CloseTryAgainLater {
				t.Fatalf("third patient from one address: read %q, then %v; want try again later (%d)", got, err, hub.CloseTryAgainLater)
			}
			break
		}
		got = append(got, string(b))
	}
	if len(got) != 1 || !strings.Contains(got[0], `"code":"unavailable"`) {
		t.Fatalf("third patient from one address got %q, want only an unavailable error", got)
	}
}

// stallingStore is a real store whose Put waits, once armed, until release
// is closed: a disk or Redis that stalls cannot be had on demand here.
type stallingStore struct {
	Store
	armed   atomic.Bool
	stalled chan struct{} // a Put is waiting
	release chan struct{}
}

func (s *stallingStore) Put(ctx context.Context, key string, value []byte) error {
	if s.armed.Load() {
		s.stalled <- struct{}{}
		<-s.release
	}
	return s.Store.Put(ctx, key, value)
}

// The store writes of an office (a room entered, a room ended) are done
// without its lock: while one waits on the store, the consultations of the
// namespace go on.
func TestStoreWriteOutsideOfficeLock(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "rehabrtc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	store := &stallingStore{Store: st.Tree("ehrc"), stalled: make(chan struct{}, 1), release: make(chan struct{})}
	e := newTestEnv(t, Config{Store: store})
	c := startConsultation(t, e, "doc", false, true)

	store.armed.Store(true)
	room2 := e.createRoom()
	p2 := e.dial("doc", true, room2)
	p2.emit("create", map[string]string{"room-id": room2}) // saves room2: the Put stalls
	select {
	case <-store.stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("entering a room wrote nothing to the store")
	}
	c.doctor.emit("offer", map[string]string{"peer-id": c.patient.ID(), "sdp": "x"})
	got := make(chan map[string]any, 1)
	go func() { got <- c.patient.expect("offer") }()
	select {
	case m := <-got:
		if m["sdp"] != "x" {
			t.Fatalf("offer %v", m)
		}
	case <-time.After(3 * time.Second):
		close(store.release)
		<-got
		t.Fatal("the office stalled while its store write waited")
	}
	close(store.release)
	if m := c.doctor.expect("new-patient"); m["room-id"] != room2 {
		t.Fatalf("new-patient %v", m)
	}
}
