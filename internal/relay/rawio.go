package relay

import (
	"net"
	"net/netip"

	"github.com/rehabrtc/rehabrtc/internal/rawudp"
)

// rawIO is a TURN socket's datagram I/O for the fast path: raw system
// calls where the platform allows (package rawudp says why), read by its
// one reader, written by any goroutine.
type rawIO struct {
	r *rawudp.Reader
	w *rawudp.Senders
}

func newRawIO(uc *net.UDPConn) (rawIO, error) {
	r, err := rawudp.NewReader(uc)
	if err != nil {
		return rawIO{}, err
	}
	w, err := rawudp.NewSenders(uc)
	if err != nil {
		return rawIO{}, err
	}
	return rawIO{r: r, w: w}, nil
}

func (x rawIO) read(b []byte) (int, netip.AddrPort, error) { return x.r.Read(b) }

func (x rawIO) write(b []byte, to netip.AddrPort) error {
	_, err := x.w.Send(b, to)
	return err
}
