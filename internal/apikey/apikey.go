// Package apikey checks the service's bearer API keys, in constant time,
// and backs off a client address after repeated wrong keys, so that keys
// cannot be guessed at network speed. The session API (httpapi) and the
// EHRC REST routes (ehrc) share one Guard: failures on either count
// together.
package apikey

import (
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits tune the backoff. Zero fields take the defaults of [DefaultLimits].
type Limits struct {
	// Free is how many wrong keys an address may send before it is made
	// to wait.
	Free int
	// Base is the first wait; each further wrong key doubles it, up to Max.
	Base, Max time.Duration
	// Forget is how long after its last wrong key an address starts again
	// with a clean slate.
	Forget time.Duration
	// Addresses bounds the memory: at most this many addresses are
	// tracked; when full, the one whose last failure is the oldest is
	// forgotten first.
	Addresses int
}

// DefaultLimits: 5 free failures, then 1 s, 2 s, 4 s… up to 5 minutes;
// forgotten 15 minutes after the last failure; 10,000 addresses. A function,
// not a variable, so that no caller can change every Guard's defaults.
func DefaultLimits() Limits {
	return Limits{Free: 5, Base: time.Second, Max: 5 * time.Minute, Forget: 15 * time.Minute, Addresses: 10000}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.Free <= 0 {
		l.Free = d.Free
	}
	if l.Base <= 0 {
		l.Base = d.Base
	}
	if l.Max <= 0 {
		l.Max = d.Max
	}
	if l.Forget <= 0 {
		l.Forget = d.Forget
	}
	if l.Addresses <= 0 {
		l.Addresses = d.Addresses
	}
	return l
}

// Guard holds the API keys and the failures per client address.
type Guard struct {
	keys   [][]byte
	limits Limits
	now    func() time.Time
	log    *slog.Logger
	client func(*http.Request) (netip.Addr, bool)

	mu    sync.Mutex
	fails map[netip.Prefix]*record
}

type record struct {
	n     int       // wrong keys since the slate was last cleaned
	last  time.Time // the last wrong key
	until time.Time // refused until then
}

// New returns a Guard for keys. now is the clock (nil: time.Now).
func New(keys []string, limits Limits, now func() time.Time) *Guard {
	g := &Guard{limits: limits.withDefaults(), now: now, fails: map[netip.Prefix]*record{},
		log: slog.New(slog.DiscardHandler), client: tcpPeer}
	if g.now == nil {
		g.now = time.Now
	}
	for _, k := range keys {
		if k != "" {
			g.keys = append(g.keys, []byte(k))
		}
	}
	return g
}

// SetLogger makes the Guard log each wait it imposes (one line per wait,
// however many requests the address sends meanwhile). Call it before use.
func (g *Guard) SetLogger(l *slog.Logger) {
	if l != nil {
		g.log = l
	}
}

// SetClientAddress sets how the Guard names the client of a request (the
// service's one rule, internal/clientaddr, which knows the trusted
// proxies); by default, the TCP peer. Call it before use.
func (g *Guard) SetClientAddress(f func(*http.Request) (netip.Addr, bool)) {
	if f != nil {
		g.client = f
	}
}

// Verdict is the outcome of [Guard.Check].
type Verdict int

// The verdicts.
const (
	Granted Verdict = iota // a right key
	Missing                // no bearer credential: not counted as a guess
	Wrong                  // a wrong key: counted
	Blocked                // the address must wait (RetryAfter): the key was not even looked at
)

// Bearer returns the credential of an "Authorization: Bearer" header, or "".
func Bearer(r *http.Request) string {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return tok
}

// Match reports whether tok is one of the keys, comparing with every key
// in constant time. It records nothing.
func (g *Guard) Match(tok string) bool {
	if tok == "" {
		return false
	}
	match := 0
	for _, k := range g.keys {
		match |= subtle.ConstantTimeCompare(k, []byte(tok))
	}
	return match == 1
}

// Check is the whole check of a request that needs an API key: refused
// while its address waits, then the key; a wrong key counts against the
// address, a right one cleans its slate. retry is how long to wait when
// Blocked.
func (g *Guard) Check(r *http.Request) (v Verdict, retry time.Duration) {
	if retry, blocked := g.Waiting(r); blocked {
		return Blocked, retry
	}
	tok := Bearer(r)
	switch {
	case tok == "":
		return Missing, 0
	case g.Match(tok):
		g.Succeeded(r)
		return Granted, 0
	}
	g.Failed(r)
	return Wrong, 0
}

// Waiting reports whether the request's address must still wait, and how
// long.
func (g *Guard) Waiting(r *http.Request) (time.Duration, bool) {
	a, ok := g.addrOf(r)
	if !ok {
		return 0, false
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	rec := g.fails[a]
	if rec == nil || !now.Before(rec.until) {
		return 0, false
	}
	return rec.until.Sub(now), true
}

// Failed counts a wrong credential against the request's address, and
// logs the wait it imposes, if any (the address, never the key).
func (g *Guard) Failed(r *http.Request) {
	a, ok := g.addrOf(r)
	if !ok {
		return
	}
	if n, wait := g.fail(a, g.now()); wait > 0 {
		g.log.Warn("wrong API keys: the client address must wait", "address", a.String(), "wrong_keys", n, "wait", wait)
	}
}

// fail counts one failure of a at now and returns the failures so far and
// the wait it sets (0: none yet).
func (g *Guard) fail(a netip.Prefix, now time.Time) (n int, wait time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rec := g.fails[a]
	if rec != nil && now.Sub(rec.last) > g.limits.Forget {
		rec = nil
	}
	if rec == nil {
		g.makeRoom(now)
		rec = &record{}
		g.fails[a] = rec
	}
	rec.n++
	rec.last = now
	over := rec.n - g.limits.Free
	if over <= 0 {
		return rec.n, 0
	}
	wait = g.limits.Max
	if over < 32 && g.limits.Base<<(over-1) < g.limits.Max {
		wait = g.limits.Base << (over - 1)
	}
	rec.until = now.Add(wait)
	return rec.n, wait
}

// Succeeded cleans the slate of the request's address.
func (g *Guard) Succeeded(r *http.Request) {
	if a, ok := g.addrOf(r); ok {
		g.mu.Lock()
		delete(g.fails, a)
		g.mu.Unlock()
	}
}

// makeRoom keeps the table under its bound: it drops forgotten addresses
// and, if still full, the one whose last failure is the oldest. Called
// with mu held.
func (g *Guard) makeRoom(now time.Time) {
	if len(g.fails) < g.limits.Addresses {
		return
	}
	type aged struct {
		a    netip.Prefix
		last time.Time
	}
	live := make([]aged, 0, len(g.fails))
	for a, rec := range g.fails {
		if now.Sub(rec.last) > g.limits.Forget && !now.Before(rec.until) {
			delete(g.fails, a)
			continue
		}
		live = append(live, aged{a, rec.last})
	}
	if len(g.fails) < g.limits.Addresses {
		return
	}
	// Full of live addresses: forget the oldest eighth at once, so that a
	// stream of new addresses costs one scan per Addresses/8 of them, not
	// one per address.
	slices.SortFunc(live, func(x, y aged) int { return x.last.Compare(y.last) })
	for _, e := range live[:max(1, len(live)/8)] {
		delete(g.fails, e.a)
	}
}

// addrOf is the bucket under which the client of r counts: its address
// (SetClientAddress), or for IPv6 its /64, which one host usually has
// whole.
func (g *Guard) addrOf(r *http.Request) (netip.Prefix, bool) {
	ip, ok := g.client(r)
	if !ok || !ip.IsValid() {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// tcpPeer is the default client address: the request's TCP peer.
func tcpPeer(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	return ip, err == nil
}

// RetryAfter is the value of a Retry-After header for wait: whole seconds.
func RetryAfter(wait time.Duration) string {
	s := int64((wait + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}
