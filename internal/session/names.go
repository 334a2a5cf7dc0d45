package session

import (
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Invitee is what a clinician told about one invitee: a display name and
// the language of their page. It is personal data (docs/security.md): shown
// only to API-key holders and kept no longer than the retention after the
// session stops.
type Invitee struct {
	Name string `json:"name"`
	Lang string `json:"lang,omitempty"`
}

// Limits of the texts a request may carry.
const (
	MaxNameLen  = 64  // runes of an invitee's or creator's display name
	MaxTitleLen = 200 // runes of session_name
)

// langTag is a short BCP 47 tag: "fr", "en-CA", "pt-BR".
var langTag = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$`)

// cleanText trims s and checks it is UTF-8 of at most max runes with no
// control or bidirectional-override character (they could disguise a name
// in the dashboard or a log). field names the field in the error.
func cleanText(field, s string, max int) (string, error) {
	if !utf8.ValidString(s) {
		return "", errorf(CodeBadRequest, "%s: not valid UTF-8", field)
	}
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > max {
		return "", errorf(CodeBadRequest, "%s: at most %d characters", field, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) || isBidiControl(r) {
			return "", errorf(CodeBadRequest, "%s: control characters are not allowed", field)
		}
	}
	return s, nil
}

func isBidiControl(r rune) bool {
	return r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069 || r == 0x200E || r == 0x200F || r == 0x061C
}

// DisplayName makes a name from another system (OpenTera's main server)
// fit to show: control and bidirectional-override characters dropped,
// spaces trimmed, at most MaxNameLen runes.
func DisplayName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || isBidiControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	return truncate(strings.TrimSpace(s), MaxNameLen)
}

// wireInvitee is one entry of session_invitees.
type wireInvitee struct {
	UUID *string `json:"uuid"`
	Name *string `json:"name"`
	Lang *string `json:"lang"`
}

// invitees validates session_invitees: uuid required, name 1..MaxNameLen,
// lang a short language tag or absent.
func parseInvitees(in []wireInvitee) (map[string]Invitee, error) {
	if len(in) > 3*MaxMembers {
		return nil, errorf(CodeBadRequest, "session_invitees: at most %d entries", 3*MaxMembers)
	}
	out := make(map[string]Invitee, len(in))
	for i, w := range in {
		field := "session_invitees[" + itoa(int64(i)) + "]"
		if w.UUID == nil {
			return nil, errorf(CodeBadRequest, "%s.uuid: required", field)
		}
		u, ok := NormalizeUUID(*w.UUID)
		if !ok {
			return nil, errorf(CodeBadRequest, "%s.uuid: not a UUID", field)
		}
		var inv Invitee
		if w.Name != nil {
			name, err := cleanText(field+".name", *w.Name, MaxNameLen)
			if err != nil {
				return nil, err
			}
			inv.Name = name
		}
		if inv.Name == "" {
			return nil, errorf(CodeBadRequest, "%s.name: required", field)
		}
		if w.Lang != nil && *w.Lang != "" {
			if len(*w.Lang) > 20 || !langTag.MatchString(*w.Lang) {
				return nil, errorf(CodeBadRequest, "%s.lang: not a language tag such as fr or en-CA", field)
			}
			inv.Lang = *w.Lang
		}
		out[u] = inv
	}
	return out, nil
}

// mergeInvitees adds the names of req to rec, keeping only members and the
// creator: no name is kept for someone the session does not know.
func mergeInvitees(rec *Record, names map[string]Invitee) {
	for u, inv := range names {
		if rec.Invitees == nil {
			rec.Invitees = map[string]Invitee{}
		}
		rec.Invitees[u] = inv
	}
	pruneInvitees(rec)
}

// pruneInvitees drops the names of people no longer invited (the creator
// keeps theirs while the record keeps any).
func pruneInvitees(rec *Record) {
	for u := range rec.Invitees {
		if u == rec.Creator.UUID {
			continue
		}
		if !rec.Members.Has(KindUser, u) && !rec.Members.Has(KindParticipant, u) && !rec.Members.Has(KindDevice, u) {
			delete(rec.Invitees, u)
		}
	}
	if len(rec.Invitees) == 0 {
		rec.Invitees = nil
	}
}

// maxTitleNames bounds the names part of a default title, in runes.
const maxTitleNames = 160

// defaultTitle is the name of a session started without one: its
// patients' names and its start time ("A. Roy, B. Côté · 2026-12-03 14:05
// UTC"), else its number and start time. The server does not know the
// clinician's time zone: the time is UTC and says so.
func defaultTitle(rec *Record) string {
	var names []string
	for _, u := range rec.Members.Participants {
		if n := rec.Invitees[u].Name; n != "" {
			names = append(names, n)
		}
	}
	at := rec.StartTime.UTC().Format("2006-01-02 15:04 UTC")
	who := strings.Join(names, ", ")
	if who == "" {
		return "Session " + itoa(rec.ID) + " · " + at
	}
	if r := []rune(who); len(r) > maxTitleNames {
		who = string(r[:maxTitleNames-1]) + "…"
	}
	return who + " · " + at
}

// therapistOf is the name patients wait for: the creator's when the
// creator is a user, else the first named user's.
func therapistOf(rec *Record) string {
	if rec.Creator.Kind == KindUser && rec.Creator.Name != "" {
		return rec.Creator.Name
	}
	for _, u := range rec.Members.Users {
		if n := rec.Invitees[u].Name; n != "" {
			return n
		}
	}
	return ""
}

// stoppedAt is when a stopped record last stopped (its last STOP event),
// zero if never.
func stoppedAt(rec *Record) time.Time {
	for i := len(rec.Events) - 1; i >= 0; i-- {
		if rec.Events[i].Type == EventStop {
			return rec.Events[i].Time
		}
	}
	return time.Time{}
}

// forgetPersonalData clears every name of a stopped record: the invitees'
// names, the creator's, and the title (which a clinician or defaultTitle
// may have made of names) becomes the neutral "Session N".
func forgetPersonalData(rec *Record) {
	rec.Invitees, rec.Creator.Name = nil, ""
	rec.Name = "Session " + itoa(rec.ID)
	rec.Forgotten = true
}
