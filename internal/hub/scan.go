package hub

import "encoding/json"

// scanner walks a JSON text. Every method leaves i after what it consumed.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// members reads the members of an object whose '{' was consumed, through its
// '}'. For each member it calls f with the unescaped key and the offset of
// the value; f must consume the value.
func (s *scanner) members(f func(key []byte, start int) *clientError) *clientError {
	s.space()
	if s.consume('}') {
		return nil
	}
	for {
		key, ok := s.str()
		if !ok {
			return errNotObject
		}
		s.space()
		if !s.consume(':') {
			return errNotObject
		}
		s.space()
		if err := f(key, s.i); err != nil {
			return err
		}
		s.space()
		if s.consume('}') {
			return nil
		}
		if !s.consume(',') {
			return errNotObject
		}
		s.space()
	}
}

// stringOrNull reads a string (returned unescaped, never nil) or null (nil).
func (s *scanner) stringOrNull() ([]byte, *clientError) {
	if s.i < len(s.b) && s.b[s.i] == 'n' {
		if !s.literal("null") {
			return nil, errNotObject
		}
		return nil, nil
	}
	if s.i < len(s.b) && s.b[s.i] == '"' {
		v, ok := s.str()
		if !ok {
			return nil, errNotObject
		}
		if v == nil {
			v = s.b[s.i-1 : s.i-1] // empty but not nil
		}
		return v, nil
	}
	if err := s.value(1); err != nil {
		return nil, err
	}
	return nil, errFieldType
}

// str reads a string token and returns its unescaped content.
func (s *scanner) str() ([]byte, bool) {
	start, escaped, ok := s.skipStr()
	switch {
	case !ok:
		return nil, false
	case escaped:
		return unescape(s.b[start-1 : s.i])
	}
	return s.b[start : s.i-1], true
}

// escape validates one escape sequence starting at the backslash.
func (s *scanner) escape() bool {
	if s.i+1 >= len(s.b) {
		return false
	}
	switch s.b[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return true
	case 'u':
		if s.i+6 > len(s.b) {
			return false
		}
		for _, h := range s.b[s.i+2 : s.i+6] {
			if !isHex(h) {
				return false
			}
		}
		s.i += 6
		return true
	}
	return false
}

// unescape decodes a quoted string that contains escapes. It is rare in
// practice, so it leans on encoding/json for the exact semantics (lone
// surrogates become U+FFFD).
func unescape(quoted []byte) ([]byte, bool) {
	var v string
	if json.Unmarshal(quoted, &v) != nil {
		return nil, false
	}
	return []byte(v), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// value validates one JSON value of any kind. depth is the nesting level of
// the container holding it (the message object is level 1).
func (s *scanner) value(depth int) *clientError {
	if s.i >= len(s.b) {
		return errNotObject
	}
	switch c := s.b[s.i]; {
	case c == '{', c == '[':
		if depth >= maxDepth {
			return errTooDeep
		}
		return s.container(depth + 1)
	case c == '"':
		if _, _, ok := s.skipStr(); !ok {
			return errNotObject
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || isDigit(c):
		return s.number()
	default:
		return errNotObject
	}
	return nil
}

// container validates an object or an array, brackets included.
func (s *scanner) container(depth int) *clientError {
	if s.consume('{') {
		return s.members(func([]byte, int) *clientError { return s.value(depth) })
	}
	s.i++ // '['
	s.space()
	if s.consume(']') {
		return nil
	}
	for {
		if err := s.value(depth); err != nil {
			return err
		}
		s.space()
		if s.consume(']') {
			return nil
		}
		if !s.consume(',') {
			return errNotObject
		}
		s.space()
	}
}

// skipStr validates a string token without unescaping it. It returns the
// offset of its first content byte and whether it holds escapes.
func (s *scanner) skipStr() (start int, escaped, ok bool) {
	if !s.consume('"') {
		return 0, false, false
	}
	start = s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return start, escaped, true
		case c == '\\':
			escaped = true
			if !s.escape() {
				return 0, false, false
			}
		case c < 0x20:
			return 0, false, false
		default:
			s.i++
		}
	}
	return 0, false, false
}

func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

func (s *scanner) lit(word string) *clientError {
	if !s.literal(word) {
		return errNotObject
	}
	return nil
}

// number validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() *clientError {
	s.consume('-')
	switch {
	case s.consume('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return errNotObject
	}
	if s.consume('.') && !s.digits() {
		return errNotObject
	}
	if s.consume('e') || s.consume('E') {
		if !s.consume('+') {
			s.consume('-')
		}
		if !s.digits() {
			return errNotObject
		}
	}
	return nil
}

// digits consumes [0-9]* and reports whether there was at least one.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && isDigit(s.b[s.i]) {
		s.i++
	}
	return s.i > start
}
