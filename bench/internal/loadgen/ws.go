package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// WS is a minimal RFC 6455 client: text messages, masked frames, pings
// answered, fragmented messages reassembled. The load generator uses it
// instead of a general-purpose library so that a sender can put a whole
// window of frames into one write and a reader can parse many frames per
// read: on one CPU the client side would otherwise be the bottleneck.
// It is a real WebSocket client over TCP; the server cannot tell.
type WS struct {
	c  net.Conn
	br *bufio.Reader

	msg []byte // the last message read; valid until the next Read

	wmu  sync.Mutex // guards the fields below and writes to c
	wbuf []byte
	rng  *mrand.ChaCha8 // masking keys
}

// CloseError is a close frame from the server.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("websocket closed: %d %s", e.Code, e.Reason) }

// CloseCode returns the close code in err, or 0.
func CloseCode(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// DialWS opens a WebSocket to ws://addr{path}. rbuf is the read buffer size.
func DialWS(ctx context.Context, addr, path string, rbuf int) (*WS, error) {
	return DialWSHeaders(ctx, addr, path, rbuf, "")
}

// DialWSHeaders is DialWS with extra request header lines (each ending in
// "\r\n"), such as the X-Forwarded-For a reverse proxy adds.
func DialWSHeaders(ctx context.Context, addr, path string, rbuf int, extra string) (*WS, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	var kb [16]byte
	_, _ = rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nUser-Agent: rehabrtc-bench\r\n" + extra + "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, rbuf)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
		resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		c.Close()
		return nil, fmt.Errorf("websocket handshake to %s%s: HTTP %d", addr, path, resp.StatusCode)
	}
	_ = c.SetDeadline(time.Time{})
	return &WS{c: c, br: br, rng: mrand.NewChaCha8(seed)}, nil
}

// appendFrame appends one masked frame. w.wmu must be held.
func (w *WS) appendFrame(dst []byte, op byte, p []byte) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(p); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n < 1<<16:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], uint32(w.rng.Uint64()))
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, p...)
	for i := range p {
		dst[start+i] ^= key[i&3]
	}
	return dst
}

// Send writes each payload as one text message, all in one write.
func (w *WS) Send(payloads ...[]byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	b := w.wbuf[:0]
	for _, p := range payloads {
		b = w.appendFrame(b, 0x1, p)
	}
	w.wbuf = b
	_, err := w.c.Write(b)
	if cap(w.wbuf) > 64<<10 {
		w.wbuf = nil
	}
	return err
}

func (w *WS) control(op byte, p []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	b := w.appendFrame(nil, op, p)
	_ = w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := w.c.Write(b)
	_ = w.c.SetWriteDeadline(time.Time{})
	return err
}

// Read returns the next text message. The slice is valid until the next
// Read. Pings are answered; a close frame is answered and returned as
// *CloseError.
func (w *WS) Read() ([]byte, error) {
	w.msg = w.msg[:0]
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		if h[1]&0x80 != 0 {
			return nil, errors.New("masked frame from server")
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var e [2]byte
			if _, err := io.ReadFull(w.br, e[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			if _, err := io.ReadFull(w.br, e[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(e[:])
		}
		if n > 16<<20 {
			return nil, errors.New("frame too large")
		}
		if op >= 0x8 { // control frames are never fragmented
			var cb [125]byte
			p := cb[:n]
			if _, err := io.ReadFull(w.br, p); err != nil {
				return nil, err
			}
			switch op {
			case 0x9:
				if err := w.control(0xA, p); err != nil {
					return nil, err
				}
			case 0x8:
				ce := &CloseError{Code: 1005}
				if len(p) >= 2 {
					ce.Code = int(binary.BigEndian.Uint16(p))
					ce.Reason = string(p[2:])
				}
				_ = w.control(0x8, p[:min(len(p), 2)])
				return nil, ce
			}
			continue
		}
		start := len(w.msg)
		w.msg = append(w.msg, make([]byte, n)...)
		if _, err := io.ReadFull(w.br, w.msg[start:]); err != nil {
			return nil, err
		}
		if op == 0x2 {
			return nil, errors.New("binary message from server")
		}
		if fin {
			return w.msg, nil
		}
	}
}

// ReadDeadline bounds the next reads.
func (w *WS) ReadDeadline(t time.Time) { _ = w.c.SetReadDeadline(t) }

// Close sends a normal close frame (best effort) and closes the socket.
func (w *WS) Close() error {
	_ = w.control(0x8, []byte{0x03, 0xe8})
	return w.c.Close()
}

// CloseNow closes the socket without a close frame (a client vanishing).
func (w *WS) CloseNow() error { return w.c.Close() }
