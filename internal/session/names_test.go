package session_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
	"github.com/rehabrtc/rehabrtc/internal/testutil"
)

// TestInviteeNamesValidation: names and languages are checked for length,
// UTF-8 and control characters; a bad one names its field.
func TestInviteeNamesValidation(t *testing.T) {
	inv := func(entry string) string {
		return `{"session_manage":{"action":"start","session_participants":["` + partB + `"],"session_invitees":[` + entry + `]}}`
	}
	for name, tc := range map[string]struct {
		body    string
		wantErr string
	}{
		"good":             {body: inv(`{"uuid":"` + partB + `","name":" Mme Côté ","lang":"fr-CA"}`)},
		"no lang":          {body: inv(`{"uuid":"` + partB + `","name":"A"}`)},
		"missing uuid":     {body: inv(`{"name":"A"}`), wantErr: "session_invitees[0].uuid: required"},
		"bad uuid":         {body: inv(`{"uuid":"x","name":"A"}`), wantErr: "session_invitees[0].uuid: not a UUID"},
		"empty name":       {body: inv(`{"uuid":"` + partB + `","name":"  "}`), wantErr: "session_invitees[0].name: required"},
		"long name":        {body: inv(`{"uuid":"` + partB + `","name":"` + strings.Repeat("é", 65) + `"}`), wantErr: "at most 64 characters"},
		"control char":     {body: inv(`{"uuid":"` + partB + `","name":"A\u0007B"}`), wantErr: "control characters"},
		"bidi override":    {body: inv(`{"uuid":"` + partB + `","name":"A\u202eB"}`), wantErr: "control characters"},
		"bad lang":         {body: inv(`{"uuid":"` + partB + `","name":"A","lang":"<script>"}`), wantErr: "lang: not a language tag"},
		"name not string":  {body: inv(`{"uuid":"` + partB + `","name":3}`), wantErr: "must be a string"},
		"stop with names":  {body: `{"session_manage":{"action":"stop","id_session":1,"session_invitees":[]}}`, wantErr: "only for start and invite"},
		"title control":    {body: `{"session_manage":{"action":"start","session_name":"a\nb"}}`, wantErr: "session_name: control characters"},
		"creator too long": {body: `{"session_manage":{"action":"start","session_creator_name":"` + strings.Repeat("x", 65) + `"}}`, wantErr: "session_creator_name: at most 64"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := session.ParseManage([]byte(tc.body))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestNamesKeptAndShown: names given at start and invite are kept with the
// record (across a restart), shown in the View, dropped with a removed
// invitee, and make the default title.
func TestNamesKeptAndShown(t *testing.T) {
	e := newEnv(t, 4)
	r := e.mustManage(`{"session_manage":{"action":"start","session_creator_user_uuid":"` + userA + `","session_creator_name":"Dr Roy",
		"session_users":["` + userA + `"],"session_participants":["` + partB + `"],
		"session_invitees":[{"uuid":"` + partB + `","name":"Mme Gagnon","lang":"fr"},{"uuid":"` + partC + `","name":"Not invited"}]}}`)
	v := r.Session
	if v.Name != "Mme Gagnon · 2026-11-21 09:00 UTC" {
		t.Errorf("default title %q", v.Name)
	}
	if v.CreatorName != "Dr Roy" || v.Invitees[partB] != (session.Invitee{Name: "Mme Gagnon", Lang: "fr"}) {
		t.Errorf("names %q %+v", v.CreatorName, v.Invitees)
	}
	if _, ok := v.Invitees[partC]; ok {
		t.Error("a name was kept for someone not invited")
	}
	e.mustManage(`{"session_manage":{"action":"invite","id_session":` + itoa(v.ID) + `,"session_participants":["` + partC + `"],
		"session_invitees":[{"uuid":"` + partC + `","name":"M. Côté","lang":"en"}]}}`)
	e.restart()
	got, err := e.mgr.Get(context.Background(), v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Invitees[partC].Name != "M. Côté" || got.Invitees[partB].Name != "Mme Gagnon" {
		t.Fatalf("names after invite and restart: %+v", got.Invitees)
	}
	data, _ := json.Marshal(got)
	if !strings.Contains(string(data), `"session_invitees":{`) || !strings.Contains(string(data), `"session_creator_name":"Dr Roy"`) {
		t.Errorf("View JSON lacks the names: %s", data)
	}
	e.mustManage(`{"session_manage":{"action":"remove","id_session":` + itoa(v.ID) + `,"session_participants":["` + partC + `"]}}`)
	got, _ = e.mgr.Get(context.Background(), v.ID)
	if _, ok := got.Invitees[partC]; ok {
		t.Error("a removed invitee's name was kept")
	}
}

// TestDefaultTitleWithoutNames: a session started with no names is still
// told apart by its number and start time.
func TestDefaultTitleWithoutNames(t *testing.T) {
	e := newEnv(t, 2)
	v := e.start()
	if want := "Session " + itoa(v.ID) + " · 2026-11-21 09:00 UTC"; v.Name != want {
		t.Fatalf("title %q, want %q", v.Name, want)
	}
}

// TestPurgePersonalData: the names of a session stopped longer than the
// retention are purged, the title too; a running session and a recently
// stopped one keep theirs; Forget purges a stopped session at once and
// refuses a running one.
func TestPurgePersonalData(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 4)
	start := func(name string) int64 {
		r := e.mustManage(`{"session_manage":{"action":"start","session_creator_user_uuid":"` + userA + `","session_creator_name":"Dr Roy",
			"session_users":["` + userA + `"],"session_participants":["` + partB + `"],
			"session_invitees":[{"uuid":"` + partB + `","name":"` + name + `"}]}}`)
		return r.Session.ID
	}
	stop := func(id int64) { e.mustManage(`{"session_manage":{"action":"stop","id_session":` + itoa(id) + `}}`) }
	old, recent, running, erased := start("Old"), start("Recent"), start("Running"), start("Erased")
	stop(old)
	e.now = e.now.Add(20 * 24 * time.Hour)
	stop(recent)
	e.now = e.now.Add(15 * 24 * time.Hour) // old stopped 35 days ago, recent 15

	n, err := e.mgr.PurgePersonalData(ctx, 30*24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want 1", n, err)
	}
	v, _ := e.mgr.Get(ctx, old)
	if v.Invitees != nil || v.CreatorName != "" || v.Name != "Session "+itoa(old) {
		t.Errorf("old session keeps personal data: %q %q %+v", v.Name, v.CreatorName, v.Invitees)
	}
	for _, id := range []int64{recent, running} {
		if v, _ := e.mgr.Get(ctx, id); v.Invitees[partB].Name == "" || v.CreatorName == "" {
			t.Errorf("session %d lost its names too early", id)
		}
	}
	if n, _ := e.mgr.PurgePersonalData(ctx, 30*24*time.Hour); n != 0 {
		t.Errorf("a second pass purged %d again", n)
	}

	if _, err := e.mgr.Forget(ctx, erased); !isCode(err, session.CodeBadRequest, "session "+itoa(erased)+" is running: stop it before deleting its names") {
		t.Fatalf("Forget of a running session: %v", err)
	}
	stop(erased)
	v, err = e.mgr.Forget(ctx, erased)
	if err != nil || v.Invitees != nil || v.CreatorName != "" {
		t.Fatalf("Forget: %v %+v", err, v)
	}
	if _, err := e.mgr.Forget(ctx, 999); !isCode(err, session.CodeNotFound, "") {
		t.Fatalf("Forget of an unknown session: %v", err)
	}
}

// TestRunPurgerEndsWithItsContext: the purger works at once, then returns
// when its owner cancels it (goleak checks nothing is left).
func TestRunPurgerEndsWithItsContext(t *testing.T) {
	e := newEnv(t, 2)
	v := e.start()
	e.mustManage(`{"session_manage":{"action":"stop","id_session":` + itoa(v.ID) + `}}`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.mgr.RunPurger(ctx, 0, time.Hour); close(done) }()
	testutil.Eventually(t, 5*time.Second, func() error {
		got, _ := e.mgr.Get(context.Background(), v.ID)
		return testutil.Until(got.Name == "Session "+itoa(v.ID), "not purged: %q", got.Name)
	})
	cancel()
	<-done
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestGateTellsMembersWhoTheyAre: a member's key (personal, or kind-level
// with their uuid) learns their own name and language and the therapist's
// name; another key or a removed member learns nothing.
func TestGateTellsMembersWhoTheyAre(t *testing.T) {
	e := newEnv(t, 2)
	v := e.mustManage(`{"session_manage":{"action":"start","session_creator_user_uuid":"` + userA + `","session_creator_name":"Dr Roy",
		"session_users":["` + userA + `"],"session_participants":["` + partB + `"],
		"session_invitees":[{"uuid":"` + partB + `","name":"Mme Gagnon","lang":"fr"}]}}`).Session
	g, ok := e.run.gates[v.Port].(session.PersonGate)
	if !ok {
		t.Fatal("the Manager's gate cannot tell members who they are")
	}
	ctx := context.Background()
	want := session.Person{Name: "Mme Gagnon", Lang: "fr", Therapist: "Dr Roy"}
	if p, err := g.Person(ctx, keyOf(t, v, session.KindParticipant, partB), ""); err != nil || p != want {
		t.Fatalf("personal key: %+v %v", p, err)
	}
	kindKey := v.URLParticipants[strings.Index(v.URLParticipants, "?key=")+5:]
	if p, err := g.Person(ctx, kindKey, partB); err != nil || p != want {
		t.Fatalf("kind-level key with the uuid: %+v %v", p, err)
	}
	for name, key := range map[string]string{"no key": "", "wrong key": "x", "kind key without uuid": kindKey} {
		if p, err := g.Person(ctx, key, ""); err == nil {
			t.Errorf("%s: told %+v", name, p)
		}
	}
	pkey := keyOf(t, v, session.KindParticipant, partB)
	e.mustManage(`{"session_manage":{"action":"remove","id_session":` + itoa(v.ID) + `,"session_participants":["` + partB + `"]}}`)
	if p, err := g.Person(ctx, pkey, ""); err == nil {
		t.Errorf("a removed member was told %+v", p)
	}
}
