package ehrc

import (
	"fmt"
	"net/http"
	"testing"
)

// TestWrongKeysBackOff is issue 12 item 8 on the EHRC routes: wrong keys
// from one address end in 429 with Retry-After (before: 401 for ever); a
// doctor removing its namespace with its own token is not a failure.
func TestWrongKeysBackOff(t *testing.T) {
	e := newTestEnv(t, Config{})
	for i := range 3 { // a doctor token is no API key, but no guess either
		id := fmt.Sprintf("doc%d", i)
		tok := e.createNS(id)
		if code, m := e.getJSON("/remove-namespace?namespaceId="+id, tok); code != 200 {
			t.Fatalf("remove with the doctor token: %d %v", code, m)
		}
	}
	codes := map[int]int{}
	for i := range 30 {
		code, _ := e.getJSON("/api/create-namespace?namespaceId=x", fmt.Sprintf("guess-%d", i))
		codes[code]++
	}
	if codes[http.StatusTooManyRequests] == 0 || codes[http.StatusUnauthorized] == 0 || len(codes) != 2 {
		t.Fatalf("answers to 30 wrong keys: %v, want 401s then 429s", codes)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/remove-namespace?namespaceId=doc0", nil)
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the right key from the guessing address during its wait: %d, Retry-After %q",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
