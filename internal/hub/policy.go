package hub

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"unicode"
	"unicode/utf8"
)

// topicPolicy is the table of docs/protocol.md: who may send a topic.
// It returns nil when role may send topic.
func topicPolicy(topic []byte, role Role) *clientError {
	switch string(topic) {
	case "chat", "status":
		return nil
	case "control.mute", "control.camera", "control.primary-view",
		"control.timer", "control.counter", "control.config":
		if role != RoleUser {
			return errForbidden
		}
		return nil
	}
	if len(topic) > len("x-") && string(topic[:2]) == "x-" {
		return nil // free for applications and devices
	}
	return errUnknownTopic
}

// maxNameRunes bounds display names (docs/protocol.md).
const maxNameRunes = 64

// cleanName makes a display name safe to show: control and bidirectional
// formatting characters removed (they can hide or reorder text in other
// peers' pages), spaces trimmed, at most maxNameRunes runes, and the role
// when nothing is left.
func cleanName(raw []byte, role Role) string {
	name := strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || isBidiControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, string(raw)))
	if utf8.RuneCountInString(name) > maxNameRunes {
		n := 0
		name = strings.TrimSpace(strings.Map(func(r rune) rune {
			n++
			if n > maxNameRunes {
				return -1
			}
			return r
		}, name))
	}
	if name == "" {
		return string(role)
	}
	return name
}

func isBidiControl(r rune) bool {
	return r == '\u061c' || r == '\u200e' || r == '\u200f' ||
		'\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069'
}

// newPeerID returns 16 URL-safe characters (96 random bits). Ids are opaque
// and new for every connection; they are safe to put in JSON unescaped.
func newPeerID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
