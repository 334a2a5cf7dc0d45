package sfu

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// rusageThread is Linux's RUSAGE_THREAD: the calling thread's usage.
const rusageThread = 1

func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	must(b, syscall.Getrusage(rusageThread, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSendWake prices what the server's sendto pays on loopback for
// the receivers' side, which depends on the load tool, not on the server:
// one 1,100-byte packet to each of 100 subscribers, then 1 ms of pause
// (a fan-out paced as in BenchmarkSession), from one thread whose own CPU
// time is measured (thread-cpu-ns/pkt). The receivers are:
//   - each: 100 sockets, each read by its own goroutine, as 100 pion
//     subscribers with a socket each (what BenchmarkSession's clients do);
//   - shared: one socket read by one goroutine, as a load tool whose
//     subscribers share one socket would be (the packets go to one address;
//     a real client would demultiplex them by ICE/DTLS);
//   - unread: 100 sockets nobody reads (the kernel queues, then drops).
func BenchmarkSendWake(b *testing.B) {
	for _, mode := range []string{"each", "shared", "unread"} {
		b.Run("receivers="+mode, func(b *testing.B) { benchSendWake(b, mode, 100) })
	}
}

func benchSendWake(b *testing.B, mode string, n int) {
	out, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	must(b, err)
	defer out.Close()
	socks := n
	if mode == "shared" {
		socks = 1
	}
	var wg sync.WaitGroup
	var sinks []*net.UDPConn
	defer func() {
		for _, s := range sinks {
			_ = s.Close() // ends the readers
		}
		wg.Wait()
	}()
	addrs := make([]netip.AddrPort, n)
	for i := range socks {
		sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		must(b, err)
		sinks = append(sinks, sink)
		if mode != "unread" {
			wg.Go(func() {
				buf := make([]byte, 1500)
				for {
					if _, _, err := sink.ReadFromUDPAddrPort(buf); err != nil {
						return
					}
				}
			})
		}
		addrs[i] = sink.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	for i := socks; i < n; i++ {
		addrs[i] = addrs[0]
	}
	pkt := make([]byte, 1100)
	// The sending thread on CPU 0, as SFU_BENCH_PIN puts the server; the
	// readers may use either CPU.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if runtime.NumCPU() > 1 {
		mask := [16]uint64{1}
		_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
		if e != 0 {
			b.Fatalf("pinning the sender: %v", e)
		}
	}
	b.ResetTimer()
	var cpu, wall time.Duration
	proc := testutil.CPUTime()
	for range b.N {
		start, t0 := threadCPU(b), time.Now()
		for _, a := range addrs {
			if _, err := out.WriteToUDPAddrPort(pkt, a); err != nil {
				b.Fatal(fmt.Errorf("send: %w", err))
			}
		}
		cpu += threadCPU(b) - start
		wall += time.Since(t0)
		time.Sleep(time.Millisecond)
	}
	proc = testutil.CPUTime() - proc
	pkts := float64(b.N * n)
	b.ReportMetric(float64(cpu.Nanoseconds())/pkts, "thread-cpu-ns/pkt")
	b.ReportMetric(float64(wall.Nanoseconds())/pkts, "send-wall-ns/pkt")
	b.ReportMetric(float64(proc.Nanoseconds())/pkts, "process-cpu-ns/pkt")
	b.ReportMetric(0, "ns/op")
}
