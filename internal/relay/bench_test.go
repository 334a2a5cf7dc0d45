package relay

import (
	"testing"
)

// BenchmarkRelay measures one packet's trip A → server → A's relay → B's
// relay → server → B, the path between two relayed browsers (pion clients;
// the server's share is in the CPU profile: go test -bench Relay -cpuprofile).
func BenchmarkRelay(b *testing.B) {
	f := newFixture(b, func(c *Config) { c.ReadLoops = 1 })
	a := f.mustAllocate(b, overUDP, f.addr(b, overUDP), alice)
	c := f.mustAllocate(b, overUDP, f.addr(b, overUDP), bob)
	if err := a.c.CreatePermission(c.relay.LocalAddr()); err != nil {
		b.Fatal(err)
	}
	if err := c.c.CreatePermission(a.relay.LocalAddr()); err != nil {
		b.Fatal(err)
	}
	pkt := make([]byte, 1200)
	buf := make([]byte, 1500)
	b.SetBytes(int64(len(pkt)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.relay.WriteTo(pkt, c.relay.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.relay.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
	}
}
