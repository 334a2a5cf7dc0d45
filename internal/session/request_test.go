package session

import (
	"errors"
	"strings"
	"testing"
)

const uA = "aaaaaaaa-0000-4000-8000-000000000001"

func TestParseManage(t *testing.T) {
	for name, tc := range map[string]struct {
		body    string
		wantErr string // substring of the error text; "" = success
		check   func(t *testing.T, r *Request)
	}{
		"start new": {body: `{"session_manage":{"action":"start","id_session":0,"id_session_type":1,"id_service":3,"id_creator_user":1,"session_users":["` + strings.ToUpper(uA) + `","` + uA + `"],"parameters":{"x":1}}}`,
			check: func(t *testing.T, r *Request) {
				if r.Action != ActionStart || r.TypeID != 1 || r.ServiceID != 3 || *r.Creator.UserID != 1 {
					t.Fatalf("%+v", r)
				}
				if got := r.Lists[KindUser]; len(got) != 1 || got[0] != uA {
					t.Fatalf("users not normalised and deduplicated: %v", got)
				}
				if _, ok := r.Lists[KindParticipant]; ok {
					t.Fatal("omitted list reported as given")
				}
			}},
		"start omitted id": {body: `{"session_manage":{"action":"start"}}`},
		"empty list is a list": {body: `{"session_manage":{"action":"invite","id_session":2,"session_devices":[]}}`, check: func(t *testing.T, r *Request) {
			if l, ok := r.Lists[KindDevice]; !ok || len(l) != 0 {
				t.Fatalf("lists %v", r.Lists)
			}
		}},
		"by uuid":              {body: `{"session_manage":{"action":"stop","session_uuid":"` + uA + `"}}`},
		"extra fields ignored": {body: `{"session_manage":{"action":"stop","id_session":1,"whatever":[1,2]}}`},
		"creator uuid": {body: `{"session_manage":{"action":"start","session_creator_participant_uuid":"` + uA + `"}}`, check: func(t *testing.T, r *Request) {
			if r.Creator.UUID != uA || r.Creator.Kind != KindParticipant {
				t.Fatalf("creator %+v", r.Creator)
			}
		}},
		"reply string code": {body: `{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":"deny","user_uuid":"` + uA + `","reply_msg":"no"}}}`, check: func(t *testing.T, r *Request) {
			if r.Reply.Code != ReplyDenied || r.Reply.Kind != KindUser || r.Reply.Msg != "no" {
				t.Fatalf("reply %+v", r.Reply)
			}
		}},
		"not json":            {body: `{`, wantErr: "malformed JSON"},
		"not an object":       {body: `[1]`, wantErr: "malformed JSON"},
		"trailing":            {body: `{"session_manage":{"action":"start"}} x`, wantErr: "trailing"},
		"no session_manage":   {body: `{"action":"start"}`, wantErr: "missing session_manage"},
		"null session_manage": {body: `{"session_manage":null}`, wantErr: "missing session_manage"},
		"no action":           {body: `{"session_manage":{}}`, wantErr: "missing action"},
		"unknown action":      {body: `{"session_manage":{"action":"explode"}}`, wantErr: "unknown action"},
		"action wrong type":   {body: `{"session_manage":{"action":5}}`, wantErr: "action: must be a string"},
		"id wrong type":       {body: `{"session_manage":{"action":"stop","id_session":"1"}}`, wantErr: "id_session: must be an integer"},
		"id negative":         {body: `{"session_manage":{"action":"stop","id_session":-1}}`, wantErr: "must not be negative"},
		"stop without id":     {body: `{"session_manage":{"action":"stop"}}`, wantErr: "id_session: required"},
		"bad uuid in list":    {body: `{"session_manage":{"action":"invite","id_session":1,"session_participants":["x"]}}`, wantErr: "session_participants[0]: not a UUID"},
		"list wrong type":     {body: `{"session_manage":{"action":"invite","id_session":1,"session_users":"` + uA + `"}}`, wantErr: "session_users: must be a list"},
		"bad session uuid":    {body: `{"session_manage":{"action":"stop","session_uuid":"zz"}}`, wantErr: "session_uuid: not a UUID"},
		"reply missing code":  {body: `{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"user_uuid":"` + uA + `"}}}`, wantErr: "reply_code: required"},
		"reply no params":     {body: `{"session_manage":{"action":"invite_reply","id_session":1}}`, wantErr: "reply_code: required"},
		"reply code range":    {body: `{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":7,"user_uuid":"` + uA + `"}}}`, wantErr: "must be 1 to 4"},
		"reply code word":     {body: `{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":"maybe","user_uuid":"` + uA + `"}}}`, wantErr: "must be 1 to 4 or accept"},
		"reply no uuid":       {body: `{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":1}}}`, wantErr: "is required"},
		"reply two uuids":     {body: `{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":1,"user_uuid":"` + uA + `","device_uuid":"` + uA + `"}}}`, wantErr: "only one"},
		"too many members":    {body: `{"session_manage":{"action":"start","session_users":[` + strings.Repeat(`"`+uA+`",`, MaxMembers) + `"` + uA + `"]}}`, wantErr: "at most"},
		"name too long":       {body: `{"session_manage":{"action":"start","session_name":"` + strings.Repeat("é", 201) + `"}}`, wantErr: "session_name"},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := ParseManage([]byte(tc.body))
			if tc.wantErr != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeBadRequest || !strings.Contains(e.Text, tc.wantErr) {
					t.Fatalf("err = %v, want bad request containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func FuzzParseManage(f *testing.F) {
	for _, s := range []string{
		`{"session_manage":{"action":"start","id_session":0,"session_users":["` + uA + `"]}}`,
		`{"session_manage":{"action":"invite_reply","id_session":1,"parameters":{"reply_code":"busy","participant_uuid":"` + uA + `"}}}`,
		`{"session_manage":{"action":"remove","id_session":1,"session_devices":[]}}`,
		`{"session_manage":null}`, `[]`, `{`, `""`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseManage(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadRequest || e.Text == "" {
				t.Fatalf("error without a public face: %v", err)
			}
			return
		}
		if r.Action == "" || (r.Action != ActionStart && r.SessionID == 0 && r.SessionUUID == "") {
			t.Fatalf("accepted an incomplete request: %+v", r)
		}
		for k, l := range r.Lists {
			if !k.Valid() || len(l) > MaxMembers {
				t.Fatalf("bad list %s %v", k, l)
			}
			for _, u := range l {
				if _, ok := NormalizeUUID(u); !ok {
					t.Fatalf("unnormalised uuid %q", u)
				}
			}
		}
	})
}

func TestTokenTableConstantTimeLookup(t *testing.T) {
	rec := &Record{Members: Members{Participants: []string{uA}}}
	toks := issueTokens(rec)
	if len(toks) != 4 { // three kind-level keys and one personal token
		t.Fatalf("tokens %d", len(toks))
	}
	seen := map[string]bool{}
	for _, tok := range toks {
		if len(tok.Key) < 22 || seen[tok.Key] { // 22 base64 chars = 128 bits
			t.Fatalf("weak or repeated key %q", tok.Key)
		}
		seen[tok.Key] = true
	}
	again := issueTokens(&Record{Members: rec.Members, Tokens: toks})
	if len(again) != 4 || again[0].Key != toks[0].Key {
		t.Fatal("reissuing changed existing keys")
	}
}
