package childproc

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

func TestLogWriter(t *testing.T) {
	var out testutil.Buffer
	w := newLogWriter(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), "stderr")
	w.Write([]byte(`{"time":"x","level":"WARN","msg":"slow peer","peer":"p1","n":2}` + "\nplain "))
	w.Write([]byte("text\n\n{not json\n"))
	w.Write([]byte(`{"level":"ERROR","msg":"listen failed","err":"address already in use"}` + "\n"))
	got := out.String()
	for _, want := range []string{
		`level=WARN msg="slow peer" n=2 peer=p1 stream=stderr`,
		`level=INFO msg="child output" line="plain text" stream=stderr`,
		`line="{not json"`,
		`level=ERROR msg="listen failed" err="address already in use"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if tail := w.tail(); tail != "slow peer | plain text | {not json | listen failed: address already in use" {
		t.Errorf("tail %q", tail)
	}
}

func TestChildEnvAndLevel(t *testing.T) {
	env := childEnv([]string{"PATH=/bin", "REHABRTC_API_KEYS=secret", "REHABRTC_REDIS_PASSWORD=pw", "HOME=/root"})
	if strings.Join(env, " ") != "PATH=/bin HOME=/root" {
		t.Errorf("env %q", env)
	}
	warn := slog.New(slog.NewTextHandler(nil, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if got := levelName(warn); got != "warn" {
		t.Errorf("level %q", got)
	}
	if got := levelName(slog.New(slog.DiscardHandler)); got != "error" {
		t.Errorf("discard level %q", got)
	}
}

// TestConnCalls checks replies find their calls, out of order, and that
// calls end when the channel closes.
func TestConnCalls(t *testing.T) {
	a, b := net.Pipe()
	ca, cb := newConn(a), newConn(b)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ca.close()
	var held []Msg
	var mu sync.Mutex
	wg.Go(func() { ca.run(func(Msg) {}) })
	wg.Go(func() {
		cb.run(func(m Msg) { // answer every second request, in reverse order
			mu.Lock()
			defer mu.Unlock()
			held = append(held, m)
			if len(held) == 2 {
				wg.Go(func() {
					cb.send(Msg{Op: opReply, ID: held[1].ID, OK: true, Key: held[1].Key})
					cb.send(Msg{Op: opReply, ID: held[0].ID, OK: true, Key: held[0].Key})
				})
			}
		})
	})
	var cwg sync.WaitGroup
	for _, k := range []string{"one", "two"} {
		cwg.Go(func() {
			r, err := ca.call(context.Background(), Msg{Op: opValid, Key: k})
			if err != nil || r.Key != k {
				t.Errorf("call %s: %+v %v", k, r, err)
			}
		})
	}
	cwg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	cb.close()
	if _, err := ca.call(ctx, Msg{Op: opValid}); err == nil {
		t.Error("call on a closing channel succeeded")
	} else if !errors.Is(err, errConnClosed) && !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "closed pipe") {
		t.Errorf("err = %v", err)
	}
}

// A native child gets the peers' message budget on its command line (it is
// no secret); without one it gets no flag, and the hub's defaults apply.
func TestNativeCommandPeerBudget(t *testing.T) {
	spec := session.RunSpec{Port: 9001, SessionID: 7}
	for _, tt := range []struct {
		rate, burst float64
		want, not   []string
	}{
		{rate: 500, burst: 1e9, want: []string{"--peer-rate=500", "--peer-burst=1e+09"}},
		{not: []string{"--peer-rate", "--peer-burst"}},
	} {
		r := &Runner{Executable: "rehabrtc", Script: "signal", Mode: Native, PeerRate: tt.rate, PeerBurst: tt.burst}
		cmd, cleanup, err := r.command(spec, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		cleanup()
		args := strings.Join(cmd.Args, " ")
		for _, w := range tt.want {
			if !strings.Contains(args, w) {
				t.Errorf("args %q lack %s", args, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(args, n) {
				t.Errorf("args %q have %s", args, n)
			}
		}
	}
}
