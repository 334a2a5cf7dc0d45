package session_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rehabrtc/rehabrtc/internal/endpoint"
	"github.com/rehabrtc/rehabrtc/internal/gateway"
	"github.com/rehabrtc/rehabrtc/internal/ports"
	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/store/boltstore"
)

// stallingStore is a real bbolt store whose Put of one session blocks
// until the test releases it: a slow disk, or OpenTera's main server taking
// its 10 s per call. It is the only double here; everything else is real.
type stallingStore struct {
	session.Store
	stall   atomic.Int64  // the session whose Put blocks; 0 = none
	entered chan struct{} // one send per blocked Put
	release chan struct{} // closed by the test
}

func (s *stallingStore) Put(ctx context.Context, r *session.Record) error {
	if r.ID == s.stall.Load() {
		s.entered <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.Put(ctx, r)
}

// TestNoLockAcrossStoreIO: while the store blocks an action on session A,
// page loads, joins, invitations and reads of other sessions proceed, and
// page loads and joins of A itself too (admission reads A's token table,
// not the Manager); a second action on A waits for the first.
func TestNoLockAcrossStoreIO(t *testing.T) {
	bolt := openBolt(t)
	st := &stallingStore{Store: bolt, entered: make(chan struct{}, 4), release: make(chan struct{})}
	runner := &endpoint.Runner{} // in process, no listener: reached through the gateway
	mgr := session.NewManager(session.Config{
		Store: st, Runner: runner, Ports: ports.New(8080, 4), ServiceKey: "VideoRehabService",
		URLs: session.URLs{Scheme: "http", Host: "127.0.0.1", Port: 1},
	})
	srv := httptest.NewServer(gateway.New(http.NotFoundHandler(), runner, "127.0.0.1"))
	defer srv.Close()
	defer mgr.Shutdown(context.Background())

	a := mustStart(t, mgr, partB)
	b := mustStart(t, mgr, partC)

	st.stall.Store(a.ID)
	release := sync.OnceFunc(func() { close(st.release) })
	defer release() // before Shutdown, also when the test fails
	invited := make(chan error, 1)
	go func() {
		invited <- manageErr(mgr, fmt.Sprintf(`{"action":"invite","id_session":%d,"session_users":["%s"]}`, a.ID, userA))
	}()
	select {
	case <-st.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the invitation never reached the store")
	}
	removed := make(chan error, 1) // the second action on A: must wait for the first
	go func() {
		removed <- manageErr(mgr, fmt.Sprintf(`{"action":"remove","id_session":%d,"session_participants":["%s"]}`, a.ID, partB))
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	probed := make(chan []error, 1)
	go func() { probed <- probeOthers(ctx, srv.URL, mgr, a, b) }()
	select {
	case errs := <-probed:
		for _, err := range errs {
			t.Error(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("page loads, joins or reads wait for A's blocked store write")
	}
	select {
	case err := <-invited:
		t.Fatalf("A's invitation returned while its store write blocks: %v", err)
	case err := <-removed:
		t.Fatalf("a second action on A ran during the first: %v", err)
	default:
	}

	release()
	for name, ch := range map[string]chan error{"invite": invited, "remove": removed} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s on A: %v", name, err)
			}
		case <-ctx.Done():
			t.Fatalf("%s on A never finished", name)
		}
	}
	got, err := mgr.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Users, []string{userA}) || len(got.Participants) != 0 {
		t.Fatalf("A after invite then remove: users %v participants %v", got.Users, got.Participants)
	}
}

// manageErr runs one session_manage action, given its inner object.
// probeOthers does, while A's store write blocks, what must not wait for
// it: page loads and joins of B and A, Get, List, an invitation to B.
func probeOthers(ctx context.Context, base string, mgr *session.Manager, a, b *session.View) []error {
	var errs []error
	for _, v := range []*session.View{b, a} {
		inv, err := invitation(v, partCOrB(v, a))
		if err == nil {
			err = pageLoad(ctx, base+inv.RequestURI())
		}
		if err == nil {
			err = join(ctx, base, v.Port, inv.Query().Get("key"))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("session %d: %w", v.ID, err))
		}
	}
	for _, id := range []int64{b.ID, a.ID} {
		if _, err := mgr.Get(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("Get(%d): %w", id, err))
		}
	}
	if l, err := mgr.List(ctx, false); err != nil || len(l) != 2 {
		errs = append(errs, fmt.Errorf("List: %d sessions, %v", len(l), err))
	}
	if err := manageErr(mgr, fmt.Sprintf(`{"action":"invite","id_session":%d,"session_users":["%s"]}`, b.ID, userA)); err != nil {
		errs = append(errs, fmt.Errorf("invite on B: %w", err))
	}
	if n := mgr.Running(); n != 2 {
		errs = append(errs, fmt.Errorf("Running = %d", n))
	}
	return errs
}

// openBolt opens a fresh bbolt store, closed when the test ends.
func openBolt(t *testing.T) *boltstore.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func manageErr(mgr *session.Manager, action string) error {
	_, err := manageReply(mgr, action)
	return err
}

func manageReply(mgr *session.Manager, action string) (*session.Reply, error) {
	req, err := session.ParseManage([]byte(`{"session_manage":` + action + `}`))
	if err != nil {
		return nil, err
	}
	return mgr.Manage(context.Background(), req)
}

func mustStart(t *testing.T, mgr *session.Manager, participant string) *session.View {
	t.Helper()
	r, err := manageReply(mgr, `{"action":"start","session_participants":["`+participant+`"]}`)
	if err != nil {
		t.Fatal(err)
	}
	return r.Session
}

// partCOrB is the participant invited to v (B has partC, A has partB).
func partCOrB(v, a *session.View) string {
	if v.ID == a.ID {
		return partB
	}
	return partC
}

// invitation is uuid's personal link to v.
func invitation(v *session.View, uuid string) (*url.URL, error) {
	for _, inv := range v.Invitations {
		if inv.UUID == uuid {
			return url.Parse(inv.URL)
		}
	}
	return nil, fmt.Errorf("no invitation of %s", uuid)
}

func pageLoad(ctx context.Context, u string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("page load: HTTP %d", resp.StatusCode)
	}
	return nil
}

// join opens the session's WebSocket through the gateway with a personal
// key and waits for the hub's welcome.
func join(ctx context.Context, base string, port int, key string) error {
	ws := "ws" + strings.TrimPrefix(base, "http") + fmt.Sprintf("/websocket/%d/", port)
	c, _, err := websocket.Dial(ctx, ws, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"join","key":"`+key+`","name":"P"}`)); err != nil {
		return err
	}
	_, msg, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(msg), `"type":"welcome"`) {
		return fmt.Errorf("join: %s %v", msg, err)
	}
	return c.Close(websocket.StatusNormalClosure, "")
}

// countingRunner wraps a runner and tracks how many of its endpoints run
// at once.
type countingRunner struct {
	session.Runner
	mu       sync.Mutex
	now, max int
}

type countedEndpoint struct {
	session.Endpoint
	r    *countingRunner
	once sync.Once
}

func (r *countingRunner) Start(ctx context.Context, spec session.RunSpec) (session.Endpoint, error) {
	ep, err := r.Runner.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.now++
	r.max = max(r.max, r.now)
	r.mu.Unlock()
	return &countedEndpoint{Endpoint: ep, r: r}, nil
}

func (e *countedEndpoint) Stop(ctx context.Context, why session.StopReason) error {
	e.once.Do(func() {
		e.r.mu.Lock()
		e.r.now--
		e.r.mu.Unlock()
	})
	return e.Endpoint.Stop(ctx, why)
}

// TestConcurrentActionsOnOneSession: starts, stops, invitations and
// removals of one session from many goroutines at once are serialised:
// never two endpoints, START and STOP events alternate, every port is given
// back, and the last state is the one stored.
func TestConcurrentActionsOnOneSession(t *testing.T) {
	bolt := openBolt(t)
	run := &countingRunner{Runner: &endpoint.Runner{}}
	pool := ports.New(8080, 4)
	mgr := session.NewManager(session.Config{Store: bolt, Runner: run, Ports: pool, ServiceKey: "VideoRehabService"})
	defer mgr.Shutdown(context.Background())
	v := mustStart(t, mgr, partB)

	actions := []string{
		fmt.Sprintf(`{"action":"start","id_session":%d}`, v.ID),
		fmt.Sprintf(`{"action":"start","session_uuid":"%s"}`, v.UUID),
		fmt.Sprintf(`{"action":"stop","id_session":%d}`, v.ID),
		fmt.Sprintf(`{"action":"invite","id_session":%d,"session_users":["%s"]}`, v.ID, userA),
		fmt.Sprintf(`{"action":"remove","id_session":%d,"session_users":["%s"]}`, v.ID, userA),
		fmt.Sprintf(`{"action":"invite","session_uuid":"%s","session_participants":["%s"]}`, v.UUID, partC),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*30)
	for g := range 8 {
		wg.Go(func() {
			for i := range 30 {
				err := manageErr(mgr, actions[(g+i*g+i)%len(actions)])
				if code, _ := session.PublicError(err); err != nil && code != session.CodeNotFound {
					errs <- err // not running is the only expected refusal
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	run.mu.Lock()
	if run.max > 1 || run.now != mgr.Running() {
		t.Errorf("endpoints: at most %d at once, %d now, %d sessions running", run.max, run.now, mgr.Running())
	}
	run.mu.Unlock()
	if pool.InUse() != mgr.Running() {
		t.Errorf("%d ports in use for %d running sessions", pool.InUse(), mgr.Running())
	}
	got, err := mgr.Get(context.Background(), v.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := bolt.Get(context.Background(), v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Users, stored.Members.Users) || !slices.Equal(got.Participants, stored.Members.Participants) || got.Status != stored.Status {
		t.Errorf("served %v %v %d, stored %v %v %d", got.Users, got.Participants, got.Status, stored.Members.Users, stored.Members.Participants, stored.Status)
	}
	running := false
	for _, ev := range got.Events {
		switch ev.Type {
		case session.EventStart:
			if running {
				t.Fatalf("two STARTs without a STOP: %v", eventTypes(got))
			}
			running = true
		case session.EventStop:
			if !running {
				t.Fatalf("a STOP without a START: %v", eventTypes(got))
			}
			running = false
		}
	}
	if running != (mgr.Running() == 1) {
		t.Errorf("events say running=%v, the Manager runs %d", running, mgr.Running())
	}
}
