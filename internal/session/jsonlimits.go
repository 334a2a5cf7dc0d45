package session

import (
	"encoding/json"
	"maps"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// Bounds of the JSON a session_manage request may carry. parameters is
// stored with the session and handed back by GET /api/sessions: a client
// (OpenTera's Python among them) must be able to read back whatever was
// accepted.
const (
	MaxJSONDepth      = 32       // nesting of objects and arrays in any field
	MaxParameterBytes = 64 << 10 // parameters, as sent
)

// checkFields checks every field of the session_manage object m (valid
// JSON): nesting at most MaxJSONDepth, parameters at most
// MaxParameterBytes, and every string, keys included, valid UTF-8 (encoding/json
// would silently replace bad bytes and lone surrogates with U+FFFD). The
// error names the field.
func checkFields(m json.RawMessage) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(m, &fields); err != nil {
		return nil // not an object: the typed decoding says what is wrong
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		v := fields[name]
		if name == "parameters" && len(v) > MaxParameterBytes {
			return errorf(CodeBadRequest, "parameters: at most %d bytes (got %d)", MaxParameterBytes, len(v))
		}
		depth, ok := scanJSON(v)
		switch {
		case !ok:
			return errorf(CodeBadRequest, "%s: not valid UTF-8", truncate(name, 64))
		case depth > MaxJSONDepth:
			return errorf(CodeBadRequest, "%s: nested deeper than %d levels", truncate(name, 64), MaxJSONDepth)
		}
	}
	if _, ok := scanJSON(m); !ok {
		return errorf(CodeBadRequest, "session_manage: a key is not valid UTF-8")
	}
	return nil
}

// scanJSON walks valid JSON and returns its nesting depth and whether
// every string in it is valid UTF-8 with no lone surrogate escape.
func scanJSON(b []byte) (depth int, ok bool) {
	d := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			d++
			depth = max(depth, d)
		case '}', ']':
			d--
		case '"':
			end, valid := scanString(b, i+1)
			if !valid {
				return depth, false
			}
			i = end
		}
	}
	return depth, true
}

// scanString checks the string whose contents start at b[i] and returns
// the index of its closing quote.
func scanString(b []byte, i int) (end int, ok bool) {
	start := i
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			return i, utf8.Valid(b[start:i])
		case c == '\\' && i+1 < len(b) && b[i+1] == 'u':
			r, ok := hex4(b, i+2)
			if !ok {
				return i, false
			}
			i += 6
			if !utf16.IsSurrogate(r) {
				continue
			}
			// A high surrogate must be followed by a low one.
			r2, ok := rune(0), false
			if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
				r2, ok = hex4(b, i+2)
			}
			if !ok || utf16.DecodeRune(r, r2) == utf8.RuneError {
				return i, false
			}
			i += 6
		case c == '\\':
			i += 2
		default:
			i++
		}
	}
	return i, false
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
