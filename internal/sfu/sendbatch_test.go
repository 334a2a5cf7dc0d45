package sfu

import (
	"fmt"
	"net"
	"testing"

	"golang.org/x/net/ipv4"
)

// BenchmarkSendBatch prices the fan-out's syscalls alone: one 1,100-byte
// packet to each of n subscribers (n loopback sockets nobody reads, so the
// kernel drops what overflows) with one sendto each, as pion's ICE mux
// does, or all in one sendmmsg, as a batching writer under the mux could.
// ns/pkt is per packet sent.
func BenchmarkSendBatch(b *testing.B) {
	for _, mode := range []string{"sendto", "sendmmsg"} {
		for _, n := range []int{4, 100} {
			b.Run(fmt.Sprintf("%s/subs=%d", mode, n), func(b *testing.B) { benchSendBatch(b, mode, n) })
		}
	}
}

func benchSendBatch(b *testing.B, mode string, n int) {
	out, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	must(b, err)
	defer out.Close()
	msgs := make([]ipv4.Message, n)
	pkt := make([]byte, 1100)
	for i := range msgs {
		sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		must(b, err)
		defer sink.Close()
		msgs[i] = ipv4.Message{Buffers: [][]byte{pkt}, Addr: sink.LocalAddr()}
	}
	pc := ipv4.NewPacketConn(out)
	b.SetBytes(int64(len(pkt) * n))
	b.ResetTimer()
	for range b.N {
		if mode == "sendto" {
			for _, m := range msgs {
				if _, err := out.WriteToUDPAddrPort(pkt, m.Addr.(*net.UDPAddr).AddrPort()); err != nil {
					b.Fatal(err)
				}
			}
			continue
		}
		for sent := 0; sent < n; {
			k, err := pc.WriteBatch(msgs[sent:], 0)
			if err != nil {
				b.Fatal(err)
			}
			sent += k
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/pkt")
}
