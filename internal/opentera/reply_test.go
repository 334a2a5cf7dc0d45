package opentera_test

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"testing"
)

// dbKeys are TeraSession.to_json()'s keys for a session without a known
// creator, in OpenTera's order.
var dbKeys = []string{"id_creator_device", "id_creator_participant", "id_creator_service", "id_creator_user",
	"id_session", "id_session_type", "session_comments", "session_duration", "session_name", "session_parameters",
	"session_start_datetime", "session_status", "session_uuid", "session_participants", "session_users",
	"session_devices"}

// keysInOrder lists the keys of a JSON object in the order they are written.
func keysInOrder(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	keys := slices.Collect(maps.Keys(m))
	idx := func(k string) int { return regexp.MustCompile(`"` + regexp.QuoteMeta(k) + `":`).FindIndex(raw)[0] }
	slices.SortFunc(keys, func(a, b string) int { return idx(a) - idx(b) })
	return keys
}

// TestReplyShapesWithoutBackend: without a main server the replies keep
// OpenTera's keys and order; what only the database knows is null or 0,
// and the creator's fields appear once the creator is known.
func TestReplyShapesWithoutBackend(t *testing.T) {
	e := newEnv(t, envOpts{})
	s := e.startAsMainServer()
	r := e.manage(map[string]any{"action": "invite", "id_session": s.ID, "session_devices": []string{devD}})
	counts := []string{"session_assets_count", "session_tests_count"}
	running := []string{"session_events", "session_key", "session_creator_uuid", "session_url_users",
		"session_url_participants", "session_url_devices", "session_invitations", "session_port"}
	want := slices.Concat(dbKeys, counts, running)
	if got := keysInOrder(t, r.Session); !slices.Equal(got, want) {
		t.Fatalf("invited: keys\n%v\nwant\n%v", got, want)
	}
	var v map[string]any
	json.Unmarshal(r.Session, &v)
	if v["session_comments"] != nil || v["session_assets_count"] != 0.0 || v["session_creator_uuid"] != nil {
		t.Fatalf("invited: %s", r.Session)
	}

	r = e.replyAsMainServer(s.ID, 1, userA, "accept")
	creator := []string{"session_creator_user", "session_creator_user_uuid"}
	if got := keysInOrder(t, r.Session); !slices.Equal(got, slices.Concat(dbKeys, creator, counts, running)) {
		t.Fatalf("creator known: keys %v", got)
	}

	r = e.manage(map[string]any{"action": "stop", "id_session": s.ID})
	if got := keysInOrder(t, r.Session); r.Status != "stopped" || !slices.Equal(got, slices.Concat(dbKeys, creator, counts)) {
		t.Fatalf("stopped: %s", r.Session)
	}
	json.Unmarshal(r.Session, &v)
	users, _ := v["session_users"].([]any)
	if len(users) != 2 || users[0].(map[string]any)["user_uuid"] != userA || v["session_status"] != 2.0 {
		t.Fatalf("stopped: %s", r.Session)
	}
}
