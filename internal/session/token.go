package session

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
)

// tokenBytes is the entropy of every key: 256 bits, twice the minimum.
const tokenBytes = 32

// NewKey returns a fresh random key, URL-safe without padding (43 chars).
func NewKey() string {
	b := make([]byte, tokenBytes)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Identity is who a key admits into a session.
type Identity struct {
	Kind Kind
	UUID string
}

// tokenTable is the immutable set of keys of one running session. The
// Manager swaps in a new table on every change, so admission reads it
// without taking the Manager's lock.
type tokenTable struct {
	tokens  []Token
	members Members
	// What members may learn of themselves through Gate.Person.
	invitees  map[string]Invitee
	therapist string
}

// newTokenTable is the table of rec's keys, members and names.
func newTokenTable(rec *Record) *tokenTable {
	return &tokenTable{tokens: rec.Tokens, members: rec.Members, invitees: rec.clone().Invitees, therapist: therapistOf(rec)}
}

// admit finds the identity a key opens, comparing every key in constant
// time so the timing tells nothing about how close a guess was.
//   - a personal token admits its own uuid (uuid may be empty or must match);
//   - a kind-level key admits a uuid currently invited in that kind.
func (t *tokenTable) admit(key, uuid string) (Identity, error) {
	tok, ok := t.find(key)
	if !ok {
		return Identity{}, ErrDenied
	}
	if tok.UUID != "" {
		if uuid != "" && uuid != tok.UUID {
			return Identity{}, ErrDenied
		}
		return Identity{Kind: tok.Kind, UUID: tok.UUID}, nil
	}
	u, ok := NormalizeUUID(uuid)
	if !ok || !t.members.Has(tok.Kind, u) {
		return Identity{}, ErrDenied
	}
	return Identity{Kind: tok.Kind, UUID: u}, nil
}

// find looks a key up without an early exit.
func (t *tokenTable) find(key string) (Token, bool) {
	var found Token
	ok := 0
	kb := []byte(key)
	for _, tok := range t.tokens {
		if subtle.ConstantTimeCompare([]byte(tok.Key), kb) == 1 {
			found, ok = tok, 1
		}
	}
	return found, ok == 1 && len(key) > 0
}

// issueTokens returns the tokens of rec: the kept ones, plus a new
// kind-level key per kind and a personal token per member that lacks one.
// Tokens of people no longer invited are dropped.
func issueTokens(rec *Record) []Token {
	var out []Token
	have := map[Token]bool{}
	for _, t := range rec.Tokens {
		if t.UUID == "" || rec.Members.Has(t.Kind, t.UUID) {
			out = append(out, t)
			have[Token{Kind: t.Kind, UUID: t.UUID}] = true
		}
	}
	for _, k := range Kinds {
		if !have[Token{Kind: k}] {
			out = append(out, Token{Kind: k, Key: NewKey()})
		}
		for _, u := range *rec.Members.list(k) {
			if !have[Token{Kind: k, UUID: u}] {
				out = append(out, Token{Kind: k, UUID: u, Key: NewKey()})
			}
		}
	}
	return out
}

// keyFor returns the key of (kind, uuid); uuid "" is the kind-level key.
func keyFor(tokens []Token, k Kind, uuid string) string {
	for _, t := range tokens {
		if t.Kind == k && t.UUID == uuid {
			return t.Key
		}
	}
	return ""
}
