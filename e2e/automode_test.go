package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// modeClient is a page's WebSocket without the page: it joins, resumes and reads the media mode
// the service tells it. The mode decides what a page does (mesh or the server), so this is what
// the pages see after a restart.
type modeClient struct {
	t            *testing.T
	srv          *server
	port         int
	key, uuid    string
	c            *websocket.Conn
	id, resumeTk string
}

func newModeClient(t *testing.T, srv *server, sess Session, uuid string) *modeClient {
	t.Helper()
	u, err := url.Parse(sess.link(t, uuid))
	if err != nil {
		t.Fatal(err)
	}
	return &modeClient{t: t, srv: srv, port: sess.Port, key: u.Query().Get("key"), uuid: uuid}
}

// join connects (again), presenting the last resume token if any, and returns the first media mode
// the service tells it. A resumed join must keep the peer id.
func (m *modeClient) join() string {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(m.srv.gateway, "http", "ws", 1)+fmt.Sprintf("/websocket/%d/", m.port), nil)
	if err != nil {
		m.t.Fatalf("%s: dial: %v", m.uuid, err)
	}
	c.SetReadLimit(1 << 20)
	m.t.Cleanup(func() { c.CloseNow() })
	m.c = c
	join, _ := json.Marshal(map[string]string{"type": "join", "key": m.key, "uuid": m.uuid, "name": m.uuid[:8], "resume": m.resumeTk})
	if err := c.Write(ctx, websocket.MessageText, join); err != nil {
		m.t.Fatal(err)
	}
	w := m.read("welcome")
	if id, _ := w["id"].(string); m.id != "" && id != m.id {
		m.t.Errorf("%s: peer id %q after rejoining, want the old %q (resume)", m.uuid, id, m.id)
	} else {
		m.id = id
	}
	m.resumeTk, _ = w["resume"].(string)
	return m.mode()
}

// mode reads until the next media-mode message and returns its mode.
func (m *modeClient) mode() string {
	m.t.Helper()
	mode, _ := m.read("media-mode")["mode"].(string)
	return mode
}

// read reads until a message of type typ, skipping the others (presence, ICE servers…).
func (m *modeClient) read(typ string) map[string]any {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := m.c.Read(ctx)
		if err != nil {
			m.t.Fatalf("%s: waiting for %s: %v", m.uuid, typ, err)
		}
		var msg map[string]any
		if err := json.Unmarshal(b, &msg); err != nil {
			m.t.Fatalf("%s: %v in %s", m.uuid, err, b)
		}
		if msg["type"] == typ {
			return msg
		}
		if msg["type"] == "error" {
			m.t.Fatalf("%s: waiting for %s: %s", m.uuid, typ, b)
		}
	}
}

// recorded waits until the service has logged that the session's media path is now on (the
// record is written in the background: a kill -9 before it would test nothing).
func (s *server) recorded(on bool) {
	s.t.Helper()
	text, js := fmt.Sprintf("media_on_sfu=%v", on), fmt.Sprintf(`"media_on_sfu":%v`, on)
	testutil.Eventually(s.t, 10*time.Second, func() error {
		out := s.out.String()
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "session media path recorded") && (strings.Contains(line, text) || strings.Contains(line, js)) {
				return nil
			}
		}
		return fmt.Errorf("no %q in the service's log:\n%s", text, out)
	})
}

// Scenario: an `auto` session of three people has moved to the SFU; the service is killed and
// started again. The first page back is told "sfu" at once (it does not mesh first and switch
// again when the third is back), and so is every other. Then one person leaves for good: after the
// next restart the two left follow the auto rule again (mesh), and the third's return moves
// everyone to the SFU.
func TestSFUAutoModeSurvivesRestart(t *testing.T) {
	srv := startServerWith(t, func(r map[string]any) { r["media_mode"] = "auto" })
	sess := srv.manage("start", 0, []string{therapistUUID}, []string{patient1UUID, patient2UUID})
	ther, pat1, pat2 := newModeClient(t, srv, sess, therapistUUID), newModeClient(t, srv, sess, patient1UUID), newModeClient(t, srv, sess, patient2UUID)
	expect := func(who *modeClient, got, want, when string) {
		t.Helper()
		if got != want {
			t.Fatalf("%s %s: told %q, want %q", who.uuid, when, got, want)
		}
	}
	expect(ther, ther.join(), "mesh", "alone")
	expect(pat1, pat1.join(), "mesh", "with one other")
	expect(pat2, pat2.join(), "sfu", "third")
	expect(ther, ther.mode(), "sfu", "when the third joined")
	expect(pat1, pat1.mode(), "sfu", "when the third joined")
	srv.recorded(true)

	srv.kill()
	srv.start()
	for _, c := range []*modeClient{ther, pat1, pat2} { // one by one, as pages come back
		expect(c, c.join(), "sfu", "rejoining after the restart")
	}

	pat2.c.Close(websocket.StatusNormalClosure, "leaving") // down to two
	srv.recorded(false)
	srv.kill()
	srv.start()
	expect(ther, ther.join(), "mesh", "rejoining the two-person session after the restart")
	expect(pat1, pat1.join(), "mesh", "rejoining the two-person session after the restart")
	expect(pat2, pat2.join(), "sfu", "coming back as the third")
	expect(ther, ther.mode(), "sfu", "when the third came back")
	expect(pat1, pat1.mode(), "sfu", "when the third came back")
}
