package session

import (
	"errors"
	"strings"
	"testing"
)

func nested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// TestParseManageBounds is issue 12 items 7 and 11: parameters nested
// 5,000 deep were stored (and killed a Python client reading them back),
// and invalid UTF-8 in session_name was silently replaced. Each is now a
// 400 naming the field; what is within the bounds still passes.
func TestParseManageBounds(t *testing.T) {
	start := func(fields string) string { return `{"session_manage":{"action":"start",` + fields + `}}` }
	for name, tc := range map[string]struct {
		body    string
		wantErr string // "" = accepted
	}{
		"parameters 5000 deep":      {start(`"parameters":` + nested(5000)), "parameters: nested deeper than 32 levels"},
		"parameters 33 deep":        {start(`"parameters":{"a":` + nested(32) + `}`), "parameters: nested deeper than 32 levels"},
		"parameters 32 deep":        {start(`"parameters":{"a":` + nested(31) + `}`), ""},
		"parameters too big":        {start(`"parameters":{"a":"` + strings.Repeat("x", MaxParameterBytes) + `"}`), "parameters: at most 65536 bytes"},
		"parameters at the bound":   {start(`"parameters":"` + strings.Repeat("x", MaxParameterBytes-2) + `"`), ""},
		"unknown field deep":        {start(`"extra":` + nested(100)), "extra: nested deeper than 32 levels"},
		"brackets inside a string":  {start(`"parameters":{"a":"` + strings.Repeat("[", 100) + `"}`), ""},
		"escaped quote then nest":   {start(`"parameters":{"a\"[[[":"\"{{{{"}`), ""},
		"name bad byte":             {start("\"session_name\":\"caf\xe9\""), "session_name: not valid UTF-8"},
		"name truncated sequence":   {start("\"session_name\":\"a\xe2\x82\""), "session_name: not valid UTF-8"},
		"name lone high surrogate":  {start(`"session_name":"a\ud800b"`), "session_name: not valid UTF-8"},
		"name lone low surrogate":   {start(`"session_name":"\udc00"`), "session_name: not valid UTF-8"},
		"name reversed pair":        {start(`"session_name":"\udc00\ud800"`), "session_name: not valid UTF-8"},
		"name surrogate at the end": {start(`"session_name":"\ud83d"`), "session_name: not valid UTF-8"},
		"name valid pair":           {start(`"session_name":"\ud83d\ude00 ok"`), ""},
		"name valid accents":        {start(`"session_name":"Séance café ü 日本"`), ""},
		"name escaped U+FFFD":       {start(`"session_name":"\ufffd"`), ""},
		"parameters bad byte":       {start("\"parameters\":{\"k\":\"\xff\"}"), "parameters: not valid UTF-8"},
		"bad byte in a key":         {start("\"parameters\":{\"\xff\":1}"), "parameters: not valid UTF-8"},
		"bad byte in a field name":  {start("\"x\xff\":1"), "not valid UTF-8"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseManage([]byte(tc.body))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var se *Error
			if !errors.As(err, &se) || se.Code != CodeBadRequest || !strings.Contains(se.Text, tc.wantErr) {
				t.Fatalf("error %v, want a bad request containing %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{`{}`, `"\ud800"`, `"\ud83d\ude00"`, `[[["a"]]]`, "\"\xff\"", `"\\"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		scanJSON(b) // any bytes: never panics, never loops
		checkFields(b)
	})
}
