package endpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
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
	mux := webrtc.NewICEUDPMux(nil, conn)
	t.Cleanup(func() { mux.Close(); conn.Close() })
	e, err := sfu.NewEngine(sfu.EngineConfig{UDPMux: mux, IncludeLoopback: true})
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
	port = testutil.FreePort(t)
	r := &Runner{Bind: "127.0.0.1", Options: opts}
	spec := session.RunSpec{SessionID: 1, Port: port, Gate: anyGate{},
		Parameters: json.RawMessage(params), Logger: slog.New(slog.DiscardHandler)}
	if len(typeConfig) > 0 {
		spec.TypeConfig = json.RawMessage(typeConfig[0])
	}
	ep, err := r.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ep.Stop(ctx, session.StopEnded); err != nil {
			t.Error(err)
		}
	})
	return port
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
