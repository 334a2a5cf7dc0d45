package endpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/sfu"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// anyGate admits key "pkey" as the participant named by the join's uuid,
// so that one test can join several people.
type anyGate struct{}

func (anyGate) Admit(_ context.Context, key, uuid string) (session.Identity, error) {
	if key != "pkey" {
		return session.Identity{}, session.ErrDenied
	}
	return session.Identity{Kind: session.KindParticipant, UUID: uuid}, nil
}

func (anyGate) Valid(_ context.Context, key string) bool { return key == "pkey" }

// newEngine is a real SFU engine over a loopback UDP mux.
func newEngine(t *testing.T) *sfu.Engine {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	mux := webrtc.NewICEUDPMux(nil, sfu.MuxConn(conn)) // as serve does
	t.Cleanup(func() { mux.Close(); conn.Close() })
	e, err := sfu.NewEngine(sfu.EngineConfig{UDPMux: mux, UDPConn: conn, IncludeLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// wsPeer is a page's WebSocket, without the page.
type wsPeer struct {
	t  *testing.T
	c  *websocket.Conn
	id string
}

func startMediaSession(t *testing.T, opts Options, params string, typeConfig ...string) (port int) {
	t.Helper()
	spec := session.RunSpec{Parameters: json.RawMessage(params)}
	if len(typeConfig) > 0 {
		spec.TypeConfig = json.RawMessage(typeConfig[0])
	}
	port, _ = startMediaSpec(t, opts, spec)
	return port
}

// startMediaSpec starts session 1 of spec on a free port (the gate is
// anyGate). stop ends it once, with why; the test's cleanup calls it with
// StopEnded if the test has not.
func startMediaSpec(t *testing.T, opts Options, spec session.RunSpec) (port int, stop func(why session.StopReason)) {
	t.Helper()
	spec.SessionID, spec.Port, spec.Gate = 1, testutil.FreePort(t), anyGate{}
	spec.Logger = slog.New(slog.DiscardHandler)
	r := &Runner{Bind: "127.0.0.1", Options: opts}
	ep, err := r.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func(why session.StopReason) {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := ep.Stop(ctx, why); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(func() { stop(session.StopEnded) })
	return spec.Port, stop
}

func joinPeer(t *testing.T, port int, uuid string) *wsPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/websocket/%d/", port, port), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(1 << 20)
	p := &wsPeer{t: t, c: c}
	p.send(`{"type":"join","key":"pkey","name":"P","uuid":"` + uuid + `"}`)
	p.id = p.expect("welcome")["id"].(string)
	return p
}

func (p *wsPeer) send(s string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

// expect reads until a message of type typ, skipping presence notices.
func (p *wsPeer) expect(typ string) map[string]any {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := p.c.Read(ctx)
		if err != nil {
			p.t.Fatalf("waiting for %s: %v", typ, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			p.t.Fatal(err)
		}
		switch m["type"] {
		case typ:
			return m
		case "peer-joined", "peer-left":
			continue
		}
		p.t.Fatalf("got %s, want a %s", b, typ)
	}
}

func (p *wsPeer) expectMode(want string) {
	p.t.Helper()
	if got := p.expect("media-mode")["mode"]; got != want {
		p.t.Fatalf("media-mode %v, want %s", got, want)
	}
}

func TestMediaModes(t *testing.T) {
	eng := newEngine(t)
	for _, tt := range []struct {
		name, def, params string
		typeConfig        string   // the OpenTera session type's config
		modes             []string // what the 1st, 2nd, 3rd page are told at join
	}{
		{"mesh", ModeMesh, "", "", []string{ModeMesh, ModeMesh, ModeMesh}},
		{"sfu", ModeSFU, "", "", []string{ModeSFU, ModeSFU, ModeSFU}},
		{"default is mesh", "", "", "", []string{ModeMesh, ModeMesh, ModeMesh}},
		{"parameters override", ModeMesh, `{"media_mode":"sfu","other":1}`, "", []string{ModeSFU, ModeSFU, ModeSFU}},
		{"bad parameter ignored", ModeSFU, `{"media_mode":"p2p"}`, "", []string{ModeSFU, ModeSFU, ModeSFU}},
		{"parameters not an object", ModeSFU, `"x"`, "", []string{ModeSFU, ModeSFU, ModeSFU}},
		{"session type", ModeMesh, "", `{"media_mode":"sfu"}`, []string{ModeSFU, ModeSFU, ModeSFU}},
		{"session type, in a section", ModeSFU, "", `{"general":{"session_recordable":true,"media_mode":"auto"}}`, []string{ModeMesh, ModeMesh, ModeSFU}},
		{"parameters over session type", ModeMesh, `{"media_mode":"mesh"}`, `{"media_mode":"sfu"}`, []string{ModeMesh, ModeMesh, ModeMesh}},
		{"bad session type ignored", ModeSFU, "", `{"media_mode":1}`, []string{ModeSFU, ModeSFU, ModeSFU}},
		{"session type not JSON", ModeSFU, "", `recordable`, []string{ModeSFU, ModeSFU, ModeSFU}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := startMediaSession(t, Options{SFU: eng, MediaMode: tt.def}, tt.params, tt.typeConfig)
			for i, want := range tt.modes {
				joinPeer(t, port, "p"+strconv.Itoa(i)).expectMode(want)
			}
		})
	}
}

func TestMediaAutoSwitchesAtThree(t *testing.T) {
	port := startMediaSession(t, Options{SFU: newEngine(t), MediaMode: ModeAuto}, "")
	a := joinPeer(t, port, "a")
	a.expectMode(ModeMesh)
	b := joinPeer(t, port, "b")
	b.expectMode(ModeMesh)
	b.send(`{"type":"sfu-offer","pc":"pub","sdp":"v=0"}`)
	if got := b.expect("sfu-error")["code"]; got != "sfu-off" {
		t.Fatalf("sfu-offer in a two-person auto session: %v, want sfu-off", got)
	}
	c := joinPeer(t, port, "c")
	for _, p := range []*wsPeer{a, b, c} {
		p.expectMode(ModeSFU)
	}
	c.c.Close(websocket.StatusNormalClosure, "")
	d := joinPeer(t, port, "d") // back to three, but the session stays on the server
	d.expectMode(ModeSFU)
}

func TestMediaRefusalsHaveAPublicFace(t *testing.T) {
	port := startMediaSession(t, Options{SFU: newEngine(t), MediaMode: ModeSFU}, "")
	a := joinPeer(t, port, "a")
	a.expectMode(ModeSFU)
	for msg, code := range map[string]string{
		`{"type":"sfu-offer","pc":"pub","sdp":"not sdp"}`: sfu.ErrBadMessage.Code,
		`{"type":"sfu-offer","pc":7}`:                     sfu.ErrBadMessage.Code,
		`{"type":"sfu-nonsense"}`:                         sfu.ErrBadMessage.Code,
		`{"type":"sfu-layer","track":"x/y","height":90}`:  sfu.ErrUnknownTrack.Code,
	} {
		a.send(msg)
		e := a.expect("sfu-error")
		if e["code"] != code || e["message"] == "" {
			t.Errorf("%s: got %v, want code %s and a message", msg, e, code)
		}
	}
}

// docs/protocol.md is the wire contract of the media messages too.
func TestMediaProtocolDocInSync(t *testing.T) {
	b, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, typ := range []string{sfu.TypeOffer, sfu.TypeAnswer, sfu.TypeCandidate, sfu.TypeLayer, sfu.TypeSpeakers, sfu.TypeError, sfu.TypeStats, sfu.TypeLayers} {
		if !strings.Contains(doc, `{"type":"`+typ+`"`) {
			t.Errorf("docs/protocol.md does not show %s", typ)
		}
	}
	for _, mode := range []string{ModeMesh, ModeSFU} {
		if !strings.Contains(doc, `{"type":"`+typeMediaMode+`","mode":"`+mode+`"}`) {
			t.Errorf("docs/protocol.md does not show media-mode %s", mode)
		}
	}
	for _, e := range []*sfu.Error{errMeshOnly, sfu.ErrBadMessage, sfu.ErrNegotiation, sfu.ErrTooManyTracks, sfu.ErrBitrate,
		sfu.ErrUnknownTrack, sfu.ErrUnknownPeer, sfu.ErrClosed} {
		if !strings.Contains(doc, "| `"+e.Code+"` |") || !strings.Contains(doc, "`"+e.Text+"`") {
			t.Errorf("docs/protocol.md: no row for %s with message %q", e.Code, e.Text)
		}
	}
}

// pathLog is the session's side of session.MediaRecorder, as the Manager
// is (the Manager's own writes are tested in internal/session): it keeps
// every call, in order.
type pathLog struct {
	mu    sync.Mutex
	calls []bool
}

func (l *pathLog) MediaOnSFU(on bool) {
	l.mu.Lock()
	l.calls = append(l.calls, on)
	l.mu.Unlock()
}

func (l *pathLog) get() []bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// waitCalls waits until the recorder has seen exactly want.
func (l *pathLog) waitCalls(t *testing.T, want ...bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		got := l.get()
		return testutil.Until(slices.Equal(got, want), "recorded %v, want %v", got, want)
	})
}

// An auto session records that it is on the server with three or more
// people, and that it is down to two, but not the departures of a restart.
func TestMediaAutoRecordsItsPath(t *testing.T) {
	eng := newEngine(t)
	rec := &pathLog{}
	port, stop := startMediaSpec(t, Options{SFU: eng, MediaMode: ModeAuto}, session.RunSpec{Media: rec})
	a, b := joinPeer(t, port, "a"), joinPeer(t, port, "b")
	a.expectMode(ModeMesh)
	b.expectMode(ModeMesh)
	c := joinPeer(t, port, "c")
	c.expectMode(ModeSFU)
	rec.waitCalls(t, true)
	c.c.Close(websocket.StatusNormalClosure, "") // down to two: a restart would mesh again
	rec.waitCalls(t, true, false)
	d := joinPeer(t, port, "d")
	d.expectMode(ModeSFU) // still on the server (no back and forth while it runs)
	rec.waitCalls(t, true, false, true)
	stop(session.StopShutdown) // three pages leave because the service restarts
	if got := rec.get(); !slices.Equal(got, []bool{true, false, true}) {
		t.Fatalf("after the shutdown the recorder saw %v: a restart's departures were recorded", got)
	}
}

// After a restart, the first page back in an auto session that was on the
// server with three people is told "sfu" at once, and so is every other;
// one that was not follows the auto rule.
func TestMediaAutoResumesOnServer(t *testing.T) {
	eng := newEngine(t)
	for _, tt := range []struct {
		name   string
		mode   string
		onSFU  bool
		modes  []string // what the 1st, 2nd, 3rd, 4th page are told at join
		record []bool   // what the recorder is told meanwhile (the 4th join follows the 3rd's call)
	}{
		{"was on the server", ModeAuto, true, []string{ModeSFU, ModeSFU, ModeSFU, ModeSFU}, nil},
		{"was down to two", ModeAuto, false, []string{ModeMesh, ModeMesh, ModeSFU, ModeSFU}, []bool{true}},
		{"now mesh by configuration", ModeMesh, true, []string{ModeMesh, ModeMesh, ModeMesh, ModeMesh}, []bool{false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &pathLog{}
			port, _ := startMediaSpec(t, Options{SFU: eng, MediaMode: tt.mode}, session.RunSpec{MediaOnSFU: tt.onSFU, Media: rec})
			for i, want := range tt.modes {
				joinPeer(t, port, "p"+strconv.Itoa(i)).expectMode(want)
			}
			rec.waitCalls(t, tt.record...)
		})
	}
}
