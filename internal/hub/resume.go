package hub

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Resume tokens let a page that reconnects (a network blip, a server
// restart) keep its peer id, so the other pages keep their connections to it
// (docs/protocol.md, "Resume"). Each welcome carries a fresh token; a join
// may present the last one.
//
// A token is base64url(id ‖ expiry ‖ nonce ‖ mac): the 12 bytes of the peer
// id, the expiry (Unix seconds), 16 random bytes and a 16-byte
// HMAC-SHA256, keyed by the join key, of everything before it and the
// admitted identity. So it is bound to the same key and identity (a token
// shown with another key fails its MAC), needs no server secret (it
// survives a restart: the session keeps its keys), and is checked in
// constant time. Each hub takes a nonce once: a token is single-use.
// Tokens are never logged.

const (
	idBytes     = 12 // newPeerID
	nonceBytes  = 16
	macBytes    = 16
	tokenBytes  = idBytes + 8 + nonceBytes + macBytes
	resumeTTL   = 12 * time.Hour // a page connected longer rejoins with a new id
	maxRedeemed = 1 << 16        // bounds the used-nonce set of one hub
)

// mintResume returns a resume token for peer id with the identity that key
// admitted, valid until now+resumeTTL.
func mintResume(key []byte, ident Identity, id string, now time.Time) string {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) != idBytes {
		return "" // not one of our ids: no resume
	}
	b := make([]byte, 0, tokenBytes)
	b = append(b, raw...)
	b = binary.BigEndian.AppendUint64(b, uint64(now.Add(resumeTTL).Unix()))
	var nonce [nonceBytes]byte
	_, _ = rand.Read(nonce[:]) // never fails (crypto/rand, Go 1.24+)
	b = append(b, nonce[:]...)
	b = append(b, resumeMAC(key, ident, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func resumeMAC(key []byte, ident Identity, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("rehabrtc resume\x00"))
	m.Write([]byte(ident.Role))
	m.Write([]byte{0})
	m.Write([]byte(ident.UUID))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)[:macBytes]
}

// openResume checks tok against the join key and the admitted identity and
// returns the peer id it keeps and its nonce; ok is false for anything
// malformed, forged, for another key or identity, or expired.
func openResume(tok, key []byte, ident Identity, now time.Time) (id string, nonce [nonceBytes]byte, ok bool) {
	if len(tok) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return "", nonce, false
	}
	b := make([]byte, tokenBytes)
	if n, err := base64.RawURLEncoding.Decode(b, tok); err != nil || n != tokenBytes {
		return "", nonce, false
	}
	body, mac := b[:tokenBytes-macBytes], b[tokenBytes-macBytes:]
	if !hmac.Equal(mac, resumeMAC(key, ident, body)) {
		return "", nonce, false
	}
	if exp := int64(binary.BigEndian.Uint64(body[idBytes:])); now.Unix() > exp {
		return "", nonce, false
	}
	copy(nonce[:], body[idBytes+8:])
	return base64.RawURLEncoding.EncodeToString(body[:idBytes]), nonce, true
}

// redeem takes a token's nonce once: it reports false for a nonce this hub
// has taken already. Expired entries are dropped as the set fills.
func (h *Hub) redeem(nonce [nonceBytes]byte, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, used := h.redeemed[nonce]; used {
		return false
	}
	if len(h.redeemed) >= maxRedeemed {
		for n, exp := range h.redeemed {
			if now.After(exp) {
				delete(h.redeemed, n)
			}
		}
		if len(h.redeemed) >= maxRedeemed {
			return false // full of live tokens: a new id is the safe answer
		}
	}
	if h.redeemed == nil {
		h.redeemed = map[[nonceBytes]byte]time.Time{}
	}
	h.redeemed[nonce] = now.Add(resumeTTL)
	return true
}
