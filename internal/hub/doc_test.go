package hub

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// docs/protocol.md is the wire contract: every error text, notice and
// close code the hub can send must be written there.
func TestProtocolDocInSync(t *testing.T) {
	b, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, e := range []*clientError{
		errNotUTF8, errNotObject, errTooDeep, errNoType, errFieldType, errUnknownType,
		errNoTo, errNoTopic, errNoKey, errUnknownPeer, errUnknownTopic, errForbidden,
		errJoined, errNotJoined, errJoinTimeout, errUnauthorized, errSessionEnded, errRateLimited, errBusy,
	} {
		row := docRow(doc, "| `"+e.Code+"` |")
		if row == "" || !strings.Contains(row, "`"+e.Message+"`") {
			t.Errorf("docs/protocol.md: no error row for %q with message %q", e.Code, e.Message)
		}
		if closes := e.Close != 0; closes != strings.Contains(row, "closed, "+strconv.Itoa(int(e.Close))) {
			t.Errorf("docs/protocol.md: error %q should say closed with %d", e.Code, e.Close)
		}
	}
	// The resume token: in join and welcome, and its properties.
	for _, s := range []string{`"resume":"<token of the last welcome>"`, `"resume":"<token>"`, "### Resume", "single-use", "constant time"} {
		if !strings.Contains(doc, s) {
			t.Errorf("docs/protocol.md does not document the resume token (%q)", s)
		}
	}
	if w := string(welcomeFrame(PeerInfo{ID: "i"}, nil, []byte("[]"), "", "t")); !strings.Contains(w, `"resume":"t"`) {
		t.Errorf("welcome %s has no resume field as documented", w)
	}
	for _, notice := range [][]byte{noticeRemoved, noticeSessionEnded, noticeServerShutdown, noticeReplaced} {
		if !strings.Contains(doc, "`"+string(notice)+"`") {
			t.Errorf("docs/protocol.md does not show %s", notice)
		}
	}
	for _, frame := range []string{`{"type":"ice-servers","iceServers":[`, "welcome.iceTransportPolicy"} {
		if !strings.Contains(doc, frame) {
			t.Errorf("docs/protocol.md does not show %s", frame)
		}
	}
	if got := string(iceServersFrame([]byte("[]"))); got != `{"type":"ice-servers","iceServers":[]}` {
		t.Errorf("ice-servers frame %s", got)
	}
	for _, code := range []int{1000, 1001, 1003, 1009, int(CloseTryAgainLater), int(CloseUnauthorized), int(CloseRemoved),
		int(CloseSessionEnded), int(CloseServerRestart), int(CloseReplaced), int(CloseTooSlow),
		int(CloseProtocol), int(CloseHeartbeat), int(CloseRateLimited)} {
		if docRow(doc, "| "+strconv.Itoa(code)+" |") == "" {
			t.Errorf("docs/protocol.md: close code %d missing from the table", code)
		}
	}
}

// docRow returns the table row of doc that starts with prefix, or "".
func docRow(doc, prefix string) string {
	for line := range strings.Lines(doc) {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}
