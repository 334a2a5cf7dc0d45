package loadgen

import (
	"encoding/binary"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestStampConn sends datagrams over loopback to a stampConn: RTP is filed
// by SSRC and sequence number with a kernel receive time that lies
// between the send and the read's return; STUN, DTLS and RTCP are not.
func TestStampConn(t *testing.T) {
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	sc := newStampConn(uc, nil)
	if runtime.GOOS == "linux" && !sc.kernel {
		t.Fatal("SO_TIMESTAMPNS refused on Linux")
	}
	tx, err := net.DialUDP("udp4", nil, uc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	rtpPkt := func(pt byte, seq uint16, ssrc uint32) []byte {
		b := make([]byte, 40)
		b[0], b[1] = 0x80, pt
		binary.BigEndian.PutUint16(b[2:], seq)
		binary.BigEndian.PutUint32(b[8:], ssrc)
		return b
	}
	buf := make([]byte, 1500)
	for _, tc := range []struct {
		name  string
		pkt   []byte
		filed bool
	}{
		{"RTP", rtpPkt(96, 7, 0xabcd), true},
		{"RTP with the marker", rtpPkt(0x80|111, 8, 0xabcd), true},
		{"another SSRC, same sequence number", rtpPkt(96, 7, 0x1234), true},
		{"RTCP sender report", rtpPkt(200, 9, 0xabcd), false},
		{"STUN", append([]byte{0, 1, 0, 0}, make([]byte, 36)...), false},
		{"DTLS", append([]byte{22, 0xfe, 0xfd}, make([]byte, 37)...), false},
		{"short", []byte{0x80, 96, 0, 10}, false},
	} {
		before := clock()
		if _, err := tx.Write(tc.pkt); err != nil {
			t.Fatal(err)
		}
		_ = uc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := sc.ReadFromAddrPort(buf)
		after := clock()
		if err != nil || n != len(tc.pkt) {
			t.Fatalf("%s: read %d, %v", tc.name, n, err)
		}
		at, ok := sc.arr.arrivalOf(tc.pkt)
		if ok != tc.filed {
			t.Errorf("%s: filed %v, want %v", tc.name, ok, tc.filed)
		}
		// The wall clock and the run's clock agree to well under a ms.
		if ok && (at < before-int64(time.Millisecond) || at > after+int64(time.Millisecond)) {
			t.Errorf("%s: arrival %d outside [%d, %d]", tc.name, at, before, after)
		}
	}
	// A sequence number 1,024 further on takes the slot: the old one is gone.
	if _, err := tx.Write(rtpPkt(96, 7+arrivalRing, 0xabcd)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.ReadFromAddrPort(buf); err != nil {
		t.Fatal(err)
	}
	if _, ok := sc.arr.get(0xabcd, 7); ok {
		t.Error("an overwritten slot still answers for its old sequence number")
	}
	if _, ok := sc.arr.get(0xabcd, 7+arrivalRing); !ok {
		t.Error("the newer packet is not filed")
	}
	if _, ok := sc.arr.get(0x9999, 7); ok {
		t.Error("an SSRC never received answers")
	}
}

// TestRxTimestamp parses control data as the kernel lays it out, with
// another message before the timestamp, and rejects truncated data.
func TestRxTimestamp(t *testing.T) {
	if runtime.GOOS != "linux" || 4<<(^uintptr(0)>>63) != 8 {
		t.Skip("the layout below is 64-bit Linux's")
	}
	cmsg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, 16+len(data))
		binary.NativeEndian.PutUint64(b, uint64(16+len(data)))
		binary.NativeEndian.PutUint32(b[8:], uint32(level))
		binary.NativeEndian.PutUint32(b[12:], uint32(typ))
		copy(b[16:], data)
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
		return b
	}
	ts := make([]byte, 16)
	binary.NativeEndian.PutUint64(ts, 1_700_000_000)
	binary.NativeEndian.PutUint64(ts[8:], 123_456_789)
	tos := cmsg(0 /* IPPROTO_IP */, 1 /* IP_TOS */, []byte{0})
	stamp := cmsg(1 /* SOL_SOCKET */, 35 /* SCM_TIMESTAMPNS */, ts)
	for _, tc := range []struct {
		name string
		oob  []byte
		want int64
		ok   bool
	}{
		{"timestamp alone", stamp, 1_700_000_000_123_456_789, true},
		{"after another message", append(append([]byte{}, tos...), stamp...), 1_700_000_000_123_456_789, true},
		{"none", tos, 0, false},
		{"truncated", stamp[:20], 0, false},
		{"empty", nil, 0, false},
	} {
		got, ok := rxTimestamp(tc.oob)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
