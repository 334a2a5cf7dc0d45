package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/rawudp"
	"github.com/rehabrtc/rehabrtc/internal/sfu"
)

// mediaSocketBuffer is the receive and send buffer asked for the SFU's
// UDP socket (the sfu package's session benchmark uses the same).
const mediaSocketBuffer = 4 << 20

// mediaSockets are the SFU's two ICE sockets, shared by every in-process
// session, and the engine built over them. serve closes them after every
// session (and so every router) has stopped.
type mediaSockets struct {
	udp    *net.UDPConn
	tcp    net.Listener
	udpMux ice.UDPMux
	tcpMux ice.TCPMux
	engine *sfu.Engine
}

// openMedia listens on RehabRTC.sfu's UDP and TCP ports. It returns nil
// when sessions run in child processes: those have no SFU.
func openMedia(cfg *config.Config, log *slog.Logger) (*mediaSockets, error) {
	if cfg.WebRTC.Executable != "" {
		if cfg.RehabRTC.MediaMode == config.MediaSFU { // auto, the default, quietly stays mesh there
			log.Warn("sessions in child processes have no SFU: their media is mesh", "media_mode", cfg.RehabRTC.MediaMode)
		}
		return nil, nil
	}
	s := cfg.RehabRTC.SFU
	nat, err := announced(cfg)
	if err != nil {
		return nil, err
	}
	bind := bindAddr(s.Bind)
	udp, err := net.ListenUDP(network("udp", bind), net.UDPAddrFromAddrPort(netip.AddrPortFrom(bind, uint16(s.UDPPort))))
	if err != nil {
		return nil, fmt.Errorf("RehabRTC.sfu.udp_port: %w", err)
	}
	// Every publisher's packets land in this one socket: with the kernel's
	// default buffer (≈208 KB) a few keyframe bursts overflow it whenever
	// the server's core is away for milliseconds (the load generator's W8
	// at 10 sessions of 4 lost 3 % of upstream packets here). Best effort:
	// the kernel caps it at net.core.rmem_max / wmem_max.
	_ = udp.SetReadBuffer(mediaSocketBuffer)
	_ = udp.SetWriteBuffer(mediaSocketBuffer)
	// DF on every datagram, as Chromium's WebRTC sockets: no fragments,
	// and no hashed IP ID per datagram (rawudp.DontFragment). Best effort.
	if err := rawudp.DontFragment(udp); err != nil {
		log.Warn("SFU UDP socket: cannot set Don't Fragment", "err", err)
	}
	tcp, err := net.Listen(network("tcp", bind), net.JoinHostPort(bind.String(), strconv.Itoa(s.TCPPort)))
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("RehabRTC.sfu.tcp_port: %w", err)
	}
	// With own_read, publishers' SRTP is taken out of the socket's reads
	// before pion's mux sees it (sfu.ReadTap); without, pion reads it all.
	var tap *sfu.ReadTap
	if s.OwnRead {
		tap = sfu.NewReadTap()
	}
	m := &mediaSockets{udp: udp, tcp: tcp,
		udpMux: webrtc.NewICEUDPMux(nil, sfu.MuxConnWith(udp, tap)),
		tcpMux: webrtc.NewICETCPMux(nil, tcp, 16)}
	m.engine, err = sfu.NewEngine(sfu.EngineConfig{
		UDPMux: m.udpMux, UDPConn: udp, ReadTap: tap, TCPMux: m.tcpMux, NAT1To1IPs: nat,
		// A loopback bind can only be reached through loopback candidates.
		IncludeLoopback: bind.IsLoopback(),
		Family:          family(bind),
		Logger:          log.With(logKeyComponent, "sfu"),
	})
	if err != nil {
		m.Close()
		return nil, err
	}
	log.Info("media ports open", "udp", udp.LocalAddr().String(), "tcp", tcp.Addr().String(),
		"media_mode", cfg.RehabRTC.MediaMode)
	return m, nil
}

// announced is the addresses the SFU's candidates name instead of the
// host's own: RehabRTC.sfu.nat_1to1_ips when set; else, on a cluster
// node, its own media address (mediaIP): every node reads the same sfu
// section, and a page must reach the home node's SFU whichever gateway
// carried its signaling.
func announced(cfg *config.Config) ([]string, error) {
	s := cfg.RehabRTC.SFU
	if len(s.NAT1To1IPs) > 0 || !cfg.RehabRTC.Cluster.Enabled {
		return s.NAT1To1IPs, nil
	}
	ip, err := mediaIP(cfg)
	if err != nil {
		return nil, err
	}
	return []string{ip.String()}, nil
}

// mediaIP is a cluster node's media address, cfg.MediaHost() resolved:
// its one IPv4 address, or its one address.
func mediaIP(cfg *config.Config) (netip.Addr, error) {
	host := cfg.MediaHost()
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	var v4 []netip.Addr
	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			v4 = append(v4, a)
		}
	}
	switch {
	case err == nil && len(v4) == 1:
		return v4[0], nil
	case err == nil && len(v4) == 0 && len(addrs) == 1:
		return addrs[0].Unmap(), nil
	}
	return netip.Addr{}, fmt.Errorf("media address of this cluster node: %q (RehabRTC.cluster.public_host, else the host of internal_addr) "+
		"resolves to %v (%v): set public_host to this node's address", host, addrs, err)
}

// bindAddr is RehabRTC.sfu.bind as an address; "" is every IPv4
// interface (pion's muxes gather one family per unspecified socket; set
// "::" for IPv6).
func bindAddr(s string) netip.Addr {
	if s == "" {
		return netip.IPv4Unspecified()
	}
	return netip.MustParseAddr(s) // validated by config
}

// family is the IP family of the media sockets bound to bind (network's
// "udp6" on "::" is IPv6 only).
func family(bind netip.Addr) int {
	if bind.Unmap().Is4() {
		return 4
	}
	return 6
}

// network is "udp4"/"tcp4" or "udp6"/"tcp6" for bind's family.
func network(proto string, bind netip.Addr) string {
	if bind.Unmap().Is4() {
		return proto + "4"
	}
	return proto + "6"
}

// Engine is nil when m is (no SFU).
func (m *mediaSockets) Engine() *sfu.Engine {
	if m == nil {
		return nil
	}
	return m.engine
}

// Close closes the muxes and their sockets. Every router must be closed.
func (m *mediaSockets) Close() error {
	if m == nil {
		return nil
	}
	var errs []error
	if m.udpMux != nil {
		errs = append(errs, m.udpMux.Close())
	}
	if m.tcpMux != nil {
		errs = append(errs, m.tcpMux.Close())
	}
	errs = append(errs, m.udp.Close(), m.tcp.Close())
	var out []error
	for _, err := range errs {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			out = append(out, err)
		}
	}
	return errors.Join(out...)
}
