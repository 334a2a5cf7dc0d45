package relay

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func TestICEFor(t *testing.T) {
	ice := &ICE{
		Static:       []ICEServer{{URLs: []string{"stun:stun.example.org:3478"}}},
		Embedded:     NewMinter(10 * time.Minute),
		EmbeddedURLs: URLs("rehab.example.org", 3478, 443),
		External:     NewRESTMinter("0123456789abcdef0123456789abcdef", 5*time.Minute),
		ExternalURLs: []string{"turns:coturn.example.org:5349?transport=tcp"},
	}
	b, exp := ice.For(alice)
	var got []ICEServer
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("servers = %s", b)
	}
	wantURLs := []string{"turn:rehab.example.org:3478?transport=udp", "turn:rehab.example.org:3478?transport=tcp",
		"turns:rehab.example.org:443?transport=tcp"}
	if !slices.Equal(got[0].URLs, wantURLs) {
		t.Errorf("embedded URLs = %v", got[0].URLs)
	}
	for i, s := range got[:2] {
		e, p, ok := parseUsername(s.Username)
		if !ok || p != alice || s.Credential == "" {
			t.Errorf("server %d: username %q credential %q", i, s.Username, s.Credential)
		}
		if i == 1 && !e.Equal(exp) {
			t.Errorf("expiry %v, want the earliest %v", exp, e)
		}
	}
	if got[0].Credential != ice.Embedded.password(got[0].Username) || got[1].Credential != ice.External.password(got[1].Username) {
		t.Error("credentials are not the HMACs of their usernames")
	}
	if got[2].Username != "" || got[2].URLs[0] != "stun:stun.example.org:3478" {
		t.Errorf("static server = %+v", got[2])
	}
	if ice.Policy() != "" {
		t.Error("policy set without ForceRelay")
	}
	if b, exp := (&ICE{}).For(alice); string(b) != "[]" || !exp.IsZero() {
		t.Errorf("empty ICE = %s, %v", b, exp)
	}
	if got := URLs("::1", 3478); got[0] != "turn:[::1]:3478?transport=udp" {
		t.Errorf("IPv6 URL = %v", got)
	}
}
