package ehrc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// anonCount returns the connections without the token in namespace ns.
func (e *testEnv) anonCount(ns string) int {
	n := e.svc.reg.lookup(ns)
	e.svc.reg.mu.Lock()
	o := n.office
	e.svc.reg.mu.Unlock()
	if o == nil {
		return 0
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.anon
}

// Tokenless connections can never take the doctor's place (issue 12 item
// 3): before, 256 of them filled the namespace and the doctor with the
// right token was refused, check-availability false.
func TestDoctorPlaceKeptFromAnonymous(t *testing.T) {
	for name, tt := range map[string]struct {
		lim        Limits
		dial, kept int
		code       string // the refusal the extra ones get
	}{
		"per address (defaults)": {Limits{}, 40, 16, errAddressFull.Message},
		"per namespace":          {Limits{Members: 10, MembersPerAddress: 1000}, 20, 10, errOfficeFull.Message},
	} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, Config{Limits: tt.lim})
			token := e.createNS("doc")
			var refused, admitted int
			for range tt.dial {
				c, msg := e.dialSIO("doc", "")
				if c == nil {
					t.Fatalf("connect refused: %s", msg)
				}
				waitFor(t, "admission", func() bool { return len(c.frames) > 0 || e.anonCount("doc") == admitted+1 })
				if len(c.frames) == 0 {
					admitted++
				} else {
					if m := c.expect("error"); m["message"] != tt.code {
						t.Fatalf("refusal %v, want %q", m, tt.code)
					}
					c.expect("disconnect")
					refused++
				}
			}
			waitFor(t, "anonymous connections counted", func() bool { return e.anonCount("doc") == tt.kept })
			if refused != tt.dial-tt.kept {
				t.Fatalf("%d refused, want %d", refused, tt.dial-tt.kept)
			}
			doctor := e.dial("doc", false, token)
			noErr(t, "doctor-joined", doctor.call("doctor-joined", map[string]string{"client-id": doctor.ID()}))
			if !e.available("doc") {
				t.Fatal("doctor not available")
			}
		})
	}
}

// clientHeader names the client of a test request: Config.ClientAddress
// is how a deployment names clients (behind a proxy), and the tests use it
// to play many addresses from loopback.
const clientHeader = "X-Test-Client"

func headerClient(r *http.Request) string { return r.Header.Get(clientHeader) }

func (e *testEnv) getFrom(client, path string) (int, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set(clientHeader, client)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header
}

// A create-room flood cannot starve patients (issue 12 item 4): before,
// 10,000 calls in 3 s made create-room answer 503 to everyone for 10
// minutes. One address is rate-limited; many addresses only push out each
// other's never-entered ids, never a room a patient is in.
func TestCreateRoomFlood(t *testing.T) {
	// The clock stands still unless the test moves it: on a loaded machine
	// the loop below may take longer than a refill interval.
	var offset atomic.Int64
	base := time.Now()
	clock := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	e := newTestEnv(t, Config{Now: clock, ClientAddress: headerClient, Limits: Limits{PendingRooms: 100}})
	token := e.createNS("doc")
	doctor := e.dial("doc", false, token)
	noErr(t, "doctor-joined", doctor.call("doctor-joined", map[string]string{}))

	// A patient takes a room before the flood and enters it.
	var entered string
	{
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/create-room", nil)
		req.Header.Set(clientHeader, "patient-1")
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		_ = json.NewDecoder(res.Body).Decode(&m)
		res.Body.Close()
		entered = m["room-id"]
	}
	patient := e.dial("doc", false, "")
	noErr(t, "create", patient.call("create", map[string]string{"room-id": entered}))
	doctor.expect("new-patient")

	// One address: its burst, then 429 with Retry-After.
	ok, limited := 0, 0
	for range 1000 {
		switch code, h := e.getFrom("flooder", "/api/create-room"); code {
		case 200:
			ok++
		case 429:
			limited++
			if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("Retry-After %q", h.Get("Retry-After"))
			}
		default:
			t.Fatalf("create-room: %d", code)
		}
	}
	if ok != 20 || limited != 980 {
		t.Fatalf("one address: %d created, %d limited; want 20 and 980", ok, limited)
	}
	// Many addresses: every call answers, the pending ids stay bounded.
	for i := range 1000 {
		if code, _ := e.getFrom(fmt.Sprintf("bot-%d", i), "/api/create-room"); code != 200 {
			t.Fatalf("create-room from address %d: %d", i, code)
		}
	}
	if _, _, rooms := e.counts(); rooms > 101 {
		t.Fatalf("%d room ids held; want at most 100 pending and 1 entered", rooms)
	}
	// The entered room is untouched; a new patient gets a room and enters it.
	if code, _ := e.get("/api/join-room?roomId="+entered, ""); code != 200 {
		t.Fatalf("entered room lost in the flood: %d", code)
	}
	code, _ := e.getFrom("patient-2", "/api/create-room")
	if code != 200 {
		t.Fatalf("new patient after the flood: %d", code)
	}
	late := e.createRoom()
	p2 := e.dial("doc", false, "")
	noErr(t, "create after the flood", p2.call("create", map[string]string{"room-id": late}))
	doctor.expect("new-patient")
	// The flooder's bucket refills with time.
	offset.Store(int64(time.Minute))
	if code, _ := e.getFrom("flooder", "/api/create-room"); code != 200 {
		t.Fatalf("flooder a minute later: %d", code)
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(2, time.Second, func() time.Time { return now })
	for i, tt := range []struct {
		advance time.Duration
		key     string
		ok      bool
	}{
		{0, "a", true}, {0, "a", true}, {0, "a", false}, {0, "b", true},
		{500 * time.Millisecond, "a", false}, {500 * time.Millisecond, "a", true}, {0, "a", false},
		{time.Hour, "a", true}, {0, "a", true}, {0, "a", false},
	} {
		now = now.Add(tt.advance)
		if ok, wait := l.allow(tt.key); ok != tt.ok || !ok && wait <= 0 {
			t.Fatalf("step %d: allow(%s) = %v %v, want %v", i, tt.key, ok, wait, tt.ok)
		}
	}
	now = now.Add(2 * time.Minute)
	l.allow("c")
	if len(l.buckets) != 1 {
		t.Fatalf("idle addresses kept: %d buckets", len(l.buckets))
	}
}

// A full limiter refuses new addresses without walking every bucket per
// request: a flood from many addresses (one IPv6 /48 holds 65,536 /64s)
// buys at most one sweep an interval.
func TestLimiterFullSweepsOncePerInterval(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(20, 3*time.Second, func() time.Time { return now })
	for i := range maxLimiterKeys {
		if ok, _ := l.allow(fmt.Sprint("filler-", i)); !ok {
			t.Fatalf("filler %d refused before the limiter was full", i)
		}
	}
	base := l.sweeps
	now = now.Add(time.Millisecond)
	for i := range 100 {
		if ok, wait := l.allow(fmt.Sprint("new-", i)); ok || wait <= 0 {
			t.Fatalf("new address %d on a full limiter: allowed %v, wait %v", i, ok, wait)
		}
	}
	if n := l.sweeps - base; n > 1 {
		t.Fatalf("%d sweeps of %d buckets for 100 refusals, want at most 1", n, maxLimiterKeys)
	}
	now = now.Add(3 * time.Second) // every filler has its token back: a sweep frees them
	if ok, _ := l.allow("after"); !ok {
		t.Fatal("a new address is refused once the idle buckets can be forgotten")
	}
}
