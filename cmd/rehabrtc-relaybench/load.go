package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/turn/v5"
)

// handover lends a UDP socket to a pion TURN client for the control
// exchanges (allocate, permission, channel bind), then takes it back: the
// data path writes and reads ChannelData on the socket itself, so the load
// generator costs little per packet.
type handover struct {
	*net.UDPConn
	taken atomic.Bool
	done  chan struct{}
}

func (h *handover) ReadFrom(b []byte) (int, net.Addr, error) {
	if h.taken.Load() {
		<-h.done
		return 0, nil, net.ErrClosed
	}
	return h.UDPConn.ReadFrom(b)
}

type client struct {
	sock   *handover
	tc     *turn.Client
	relay  net.PacketConn
	server *net.UDPAddr
}

func newClient(t *target, i int) (*client, error) {
	server, err := net.ResolveUDPAddr("udp4", t.addr)
	if err != nil {
		return nil, err
	}
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	uc.SetReadBuffer(4 << 20)
	uc.SetWriteBuffer(4 << 20)
	h := &handover{UDPConn: uc, done: make(chan struct{})}
	tc, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: t.addr, TURNServerAddr: t.addr, Conn: h,
		Username: t.creds[i][0], Password: t.creds[i][1], Realm: "rehabrtc"})
	if err != nil {
		uc.Close()
		return nil, err
	}
	if err := tc.Listen(); err != nil {
		return nil, err
	}
	relay, err := tc.Allocate()
	if err != nil {
		tc.Close()
		uc.Close()
		return nil, fmt.Errorf("allocate (client %d): %w", i, err)
	}
	return &client{sock: h, tc: tc, relay: relay, server: server}, nil
}

func (c *client) close() {
	c.relay.Close()
	c.tc.Close()
	close(c.sock.done)
	c.sock.UDPConn.Close()
}

// pair binds channels both ways through pion (its first writes to a peer
// create the permission and bind channel 0x4000, the first number), checks
// that data goes through, then takes both sockets back.
func pair(a, b *client) error {
	deadline := time.Now().Add(5 * time.Second)
	got := func(c *client) bool {
		buf := make([]byte, 1500)
		c.relay.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, _, err := c.relay.ReadFrom(buf)
		return err == nil
	}
	okA, okB := false, false
	for !(okA && okB) {
		if time.Now().After(deadline) {
			return errors.New("pair: nothing relayed during set-up")
		}
		a.relay.WriteTo([]byte("hello"), b.relay.LocalAddr())
		b.relay.WriteTo([]byte("hello"), a.relay.LocalAddr())
		okB = okB || got(b)
		okA = okA || got(a)
	}
	time.Sleep(300 * time.Millisecond) // the channel bindings complete
	a.sock.taken.Store(true)
	b.sock.taken.Store(true)
	// Unblock pion's reader if it sits in ReadFrom: it sees taken next time.
	a.sock.UDPConn.WriteTo([]byte{0}, a.sock.LocalAddr())
	b.sock.UDPConn.WriteTo([]byte{0}, b.sock.LocalAddr())
	return nil
}

// result is one offered rate against one server.
type result struct {
	server       string
	round        int
	offered      int     // Mbit/s
	sent         float64 // Mbit/s the load generator managed to send
	relayed      float64 // Mbit/s delivered
	loss         float64 // 0..1
	cpuMsPerMbit float64
	cpuBusy      float64 // fraction of one CPU
	loadBusy     float64 // the load generator's CPU, fraction of one CPU
	p50, p99     time.Duration
}

const channel = 0x4000

// measure runs every rate against one server.
func measure(ctx context.Context, o options, name string, start starter) ([]result, error) {
	t, err := start(ctx, o, 2*o.pairs)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	clients := make([]*client, 0, 2*o.pairs)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	for i := range 2 * o.pairs {
		c, err := newClient(t, i)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	for i := 0; i < len(clients); i += 2 {
		if err := pair(clients[i], clients[i+1]); err != nil {
			return nil, err
		}
	}
	var out []result
	over := 0 // rates in a row whose loss passed 1 %
	for _, rate := range schedule(o) {
		if ctx.Err() != nil || over == 2 {
			break
		}
		r, err := step(o, t.pid, clients, rate)
		if err != nil {
			return out, err
		}
		r.server = name
		fmt.Fprintf(os.Stderr, "%s %4d Mbit/s: sent %.1f, relayed %.1f, loss %.2f%%, %.2f CPU-ms/Mbit (%.0f%% busy; load generator %.0f%%), p50 %v p99 %v\n",
			name, rate, r.sent, r.relayed, 100*r.loss, r.cpuMsPerMbit, 100*r.cpuBusy, 100*r.loadBusy, r.p50, r.p99)
		out = append(out, r)
		if r.short() {
			continue // the load generator's limit, not the server's: says nothing of saturation
		}
		if over++; r.loss <= 0.01 {
			over = 0
		}
		if r.loss > 0.2 {
			break // far past saturation
		}
	}
	return out, nil
}

// schedule is the listed rates, then steps up to o.maxRate past the last.
func schedule(o options) []int {
	rates := slices.Clone(o.rates)
	for r := rates[len(rates)-1] + o.rateStep; r <= o.maxRate; r += o.rateStep {
		rates = append(rates, r)
	}
	return rates
}

// short reports whether the load generator failed to send the offered
// rate (a machine too busy for it): the step measured it, not the server.
func (r result) short() bool { return r.sent < 0.97*float64(r.offered) }

// saturation is the offered rate from which the loss stayed above 1 % to
// the end of rs (one server's run, rates rising; steps the load generator
// fell short in are left out); 0 if the last did not.
func saturation(rs []result) int {
	at := 0
	for i := len(rs) - 1; i >= 0; i-- {
		switch {
		case rs[i].short():
		case rs[i].loss > 0.01:
			at = rs[i].offered
		default:
			return at
		}
	}
	return at
}

// step offers rate Mbit/s (A→B, split over the pairs) for a warm-up second
// plus o.duration, measuring the latter.
func step(o options, pid int, clients []*client, rate int) (result, error) {
	pairs := len(clients) / 2
	pps := float64(rate) * 1e6 / float64(8*o.packet) / float64(pairs)
	warm := time.Second
	origin := time.Now()
	from, to := warm, warm+o.duration // the measured window, since origin
	var sent atomic.Int64
	recv := make([]receiver, pairs)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range pairs {
		a, b := clients[2*i], clients[2*i+1]
		wg.Go(func() { recv[i].run(b, origin, from, to, o.packet, stop) })
		wg.Go(func() { send(a, pps, origin, from, to, o.packet, &sent) })
	}
	time.Sleep(warm)
	cpu0, self0 := cpuTime(pid), selfCPU()
	time.Sleep(o.duration)
	cpu1, self1 := cpuTime(pid), selfCPU()
	time.Sleep(300 * time.Millisecond) // stragglers
	close(stop)
	for _, c := range clients { // unblock the receivers
		c.sock.UDPConn.SetReadDeadline(time.Now())
	}
	wg.Wait()
	for _, c := range clients {
		c.sock.UDPConn.SetReadDeadline(time.Time{})
	}
	var got int64
	var lat []time.Duration
	for i := range recv {
		got += recv[i].n
		lat = append(lat, recv[i].lat...)
	}
	r := result{offered: rate}
	if s := sent.Load(); s > 0 {
		r.loss = max(0, 1-float64(got)/float64(s))
	}
	secs := o.duration.Seconds()
	r.sent = float64(sent.Load()) * float64(8*o.packet) / 1e6 / secs
	r.loadBusy = (self1 - self0).Seconds() / secs
	r.relayed = float64(got) * float64(8*o.packet) / 1e6 / secs
	busy := (cpu1 - cpu0).Seconds()
	r.cpuBusy = busy / secs
	if r.relayed > 0 {
		r.cpuMsPerMbit = busy * 1000 / (r.relayed * secs)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r, nil
}

// send writes ChannelData from a's socket at pps until the window ends.
// Each payload starts with the send time since origin.
func send(a *client, pps float64, origin time.Time, from, to time.Duration, size int, sent *atomic.Int64) {
	buf := make([]byte, 4+size)
	binary.BigEndian.PutUint16(buf[0:], channel)
	binary.BigEndian.PutUint16(buf[2:], uint16(size))
	n := 0
	for {
		el := time.Since(origin)
		if el >= to {
			return
		}
		for due := int(el.Seconds() * pps); n < due; n++ {
			now := time.Since(origin)
			binary.BigEndian.PutUint64(buf[4:], uint64(now))
			if _, err := a.sock.UDPConn.WriteToUDP(buf, a.server); err != nil {
				continue
			}
			if now >= from && now < to {
				sent.Add(1)
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
}

type receiver struct {
	n   int64
	lat []time.Duration
}

func (r *receiver) run(b *client, origin time.Time, from, to time.Duration, size int, stop chan struct{}) {
	buf := make([]byte, 2048)
	for {
		n, _, err := b.sock.UDPConn.ReadFromUDP(buf)
		if err != nil {
			select {
			case <-stop:
				return
			default:
				continue
			}
		}
		if n < 12 || buf[0]&0xC0 != 0x40 { // not ChannelData
			continue
		}
		at := time.Since(origin)
		sentAt := time.Duration(binary.BigEndian.Uint64(buf[4:12]))
		if sentAt >= from && sentAt < to {
			r.n++
			r.lat = append(r.lat, at-sentAt)
		}
	}
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuTime is the user+system CPU time of process pid.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

func printTable(w io.Writer, o options, rs []result) {
	fmt.Fprintf(w, "\n%d pairs (%d allocations), %d-byte payloads, A→B through two allocations, %v per rate; server on CPU %q\n\n",
		o.pairs, 2*o.pairs, o.packet, o.duration, o.serverCPU)
	fmt.Fprintln(w, "| round | server | offered Mbit/s | sent | relayed | loss | server CPU | CPU-ms per relayed Mbit | latency p50 | p99 | load generator CPU |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	type run struct {
		round  int
		server string
	}
	var order []run
	byRun := map[run][]result{}
	for _, r := range rs {
		k := run{r.round, r.server}
		if _, ok := byRun[k]; !ok {
			order = append(order, k)
		}
		byRun[k] = append(byRun[k], r)
		short := ""
		if r.short() {
			short = " (short)"
		}
		fmt.Fprintf(w, "| %d | %s | %d | %.1f%s | %.1f | %.2f %% | %.0f %% | %.2f | %v | %v | %.0f %% |\n", r.round, r.server, r.offered,
			r.sent, short, r.relayed, 100*r.loss, 100*r.cpuBusy, r.cpuMsPerMbit, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), 100*r.loadBusy)
	}
	fmt.Fprintln(w)
	for _, k := range order {
		rs := byRun[k]
		last := rs[len(rs)-1]
		switch at := saturation(rs); {
		case at == 0:
			fmt.Fprintf(w, "round %d, %s: loss stays at or below 1 %% up to %d Mbit/s offered (not saturated)\n", k.round, k.server, last.offered)
		default:
			fmt.Fprintf(w, "round %d, %s: saturation (loss above 1 %% from there on) at %d Mbit/s offered\n", k.round, k.server, at)
		}
		if n := len(slices.DeleteFunc(slices.Clone(rs), func(r result) bool { return !r.short() })); n > 0 {
			fmt.Fprintf(w, "  (the load generator fell short of the offered rate in %d step(s), left out)\n", n)
		}
		if last.loadBusy > 0.9 {
			fmt.Fprintf(w, "  (the load generator ran at %.0f %% of its CPU at the last rate: it may be the limit too)\n", 100*last.loadBusy)
		}
	}
}
