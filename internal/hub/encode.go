package hub

import (
	"unicode/utf8"
)

// Outgoing frames are built by appending bytes: no maps, no reflection, one
// allocation of the exact size per relayed message, shared by every
// recipient of a broadcast. Relayed data is copied verbatim (decode checked
// that it is valid JSON).

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, and
// U+2028/U+2029 are escaped so that the text is also valid JavaScript.
func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			dst = appendEscape(dst, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(append(dst, s[start:i]...), `\u202`...)
			dst = append(dst, hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// appendData appends a relayed data value, or null when it was absent.
func appendData(dst, data []byte) []byte {
	if data == nil {
		return append(dst, "null"...)
	}
	return append(dst, data...)
}

// signalFrame builds {"type":"signal","from":…,"data":…}.
func signalFrame(from string, data []byte) []byte {
	const head, mid = `{"type":"signal","from":"`, `","data":`
	b := make([]byte, 0, len(head)+len(from)+len(mid)+max(len(data), 4)+1)
	b = append(b, head...)
	b = append(b, from...) // peer ids need no escaping
	b = append(b, mid...)
	b = appendData(b, data)
	return append(b, '}')
}

// messageFrame builds {"type":"message","from":…,"topic":…,"data":…}.
func messageFrame(from string, topic, data []byte) []byte {
	const head, mid, tail = `{"type":"message","from":"`, `","topic":`, `,"data":`
	n := len(head) + len(from) + len(mid) + len(topic) + 2 + len(tail) + max(len(data), 4) + 1
	b := make([]byte, 0, n)
	b = append(b, head...)
	b = append(b, from...)
	b = append(b, mid...)
	b = appendString(b, topic)
	b = append(b, tail...)
	b = appendData(b, data)
	return append(b, '}')
}

func appendError(dst []byte, code, msg string) []byte {
	dst = append(dst, `{"type":"error","code":`...)
	dst = appendString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, msg)
	return append(dst, '}')
}

// appendPeer appends {"id","name","uuid","role"}, the shape of PeerInfo.
func appendPeer(dst []byte, p PeerInfo) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, p.ID)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, p.Name)
	dst = append(dst, `,"uuid":`...)
	dst = appendString(dst, p.UUID)
	dst = append(dst, `,"role":`...)
	dst = appendString(dst, p.Role)
	return append(dst, '}')
}

// welcomeFrame builds the answer to a good join. others are the peers
// already there, as encoded by appendPeer.
func welcomeFrame(me PeerInfo, others [][]byte, iceServers []byte, icePolicy, resume string) []byte {
	n := 144 + len(me.Name) + len(me.UUID) + len(iceServers) + len(resume)
	for _, o := range others {
		n += len(o) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"type":"welcome","id":`...)
	b = appendString(b, me.ID)
	b = append(b, `,"role":`...)
	b = appendString(b, me.Role)
	b = append(b, `,"uuid":`...)
	b = appendString(b, me.UUID)
	b = append(b, `,"name":`...)
	b = appendString(b, me.Name)
	b = append(b, `,"peers":[`...)
	for i, o := range others {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, o...)
	}
	b = append(b, `],"iceServers":`...)
	b = append(b, iceServers...)
	if icePolicy != "" {
		b = append(b, `,"iceTransportPolicy":`...)
		b = appendString(b, icePolicy)
	}
	if resume != "" {
		b = append(b, `,"resume":`...)
		b = appendString(b, resume)
	}
	return append(b, '}')
}

// iceServersFrame renews a peer's ICE servers.
func iceServersFrame(iceServers []byte) []byte {
	const head = `{"type":"ice-servers","iceServers":`
	b := make([]byte, 0, len(head)+len(iceServers)+1)
	b = append(b, head...)
	b = append(b, iceServers...)
	return append(b, '}')
}

func peerJoinedFrame(peerJSON []byte) []byte {
	const head = `{"type":"peer-joined","peer":`
	b := make([]byte, 0, len(head)+len(peerJSON)+1)
	b = append(b, head...)
	b = append(b, peerJSON...)
	return append(b, '}')
}

func peerLeftFrame(id string) []byte {
	const head = `{"type":"peer-left","id":"`
	b := make([]byte, 0, len(head)+len(id)+2)
	b = append(b, head...)
	b = append(b, id...)
	return append(b, '"', '}')
}
