package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// spec is the RunSpec of the last endpoint started on port.
func (e *env) spec(port int) session.RunSpec {
	e.run.mu.Lock()
	defer e.run.mu.Unlock()
	return e.run.specs[port]
}

// storedOnSFU waits until the store's record of id says on.
func (e *env) storedOnSFU(id int64, on bool) {
	e.t.Helper()
	testutil.Eventually(e.t, 10*time.Second, func() error {
		rec, err := e.store.Get(context.Background(), id)
		if err != nil {
			return err
		}
		return testutil.Until(rec.MediaOnSFU == on, "record says media_on_sfu %v, want %v", rec.MediaOnSFU, on)
	})
}

// An auto session's media path, as its endpoint reports it, is written in
// its record and handed to the endpoint that a restart starts; it is
// cleared when the endpoint says so and when the session stops.
func TestMediaOnSFUSurvivesRestart(t *testing.T) {
	e := newEnv(t, 3)
	v := e.start()
	sp := e.spec(v.Port)
	if sp.Media == nil || sp.MediaOnSFU {
		t.Fatalf("new session: Media %v, MediaOnSFU %v; want a recorder and false", sp.Media, sp.MediaOnSFU)
	}
	// Many calls in a burst: the record ends as the last one asked.
	for i := range 20 {
		sp.Media.MediaOnSFU(i%2 == 1)
	}
	e.storedOnSFU(v.ID, true)

	e.restart()
	sp = e.spec(v.Port)
	if !sp.MediaOnSFU {
		t.Fatal("after a restart the endpoint starts without the session's media path (MediaOnSFU false)")
	}
	// An action after the write keeps it (every writer clones the record).
	e.mustManage(`{"session_manage":{"action":"invite","id_session":1,"session_participants":["` + partC + `"]}}`)
	e.storedOnSFU(v.ID, true)

	sp.Media.MediaOnSFU(false) // fewer than three people now
	e.storedOnSFU(v.ID, false)
	e.restart()
	if e.spec(v.Port).MediaOnSFU {
		t.Fatal("cleared path came back after a restart")
	}

	// Stopping a session forgets its path: a later start follows the mode's rule.
	e.spec(v.Port).Media.MediaOnSFU(true)
	e.storedOnSFU(v.ID, true)
	e.mustManage(`{"session_manage":{"action":"stop","id_session":1}}`)
	e.storedOnSFU(v.ID, false)
	r := e.mustManage(`{"session_manage":{"action":"start","id_session":1}}`)
	if e.spec(r.Session.Port).MediaOnSFU {
		t.Fatal("a stopped and started session starts with its old media path")
	}
}
