package ehrc

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// Store keeps namespaces and entered rooms across restarts, so that a
// restart is invisible to an EHRC backend (its namespaces and doctor
// tokens still work) and to the apps (they reconnect and go on in the
// same room). It is a tree of small records: a namespace under its id, its
// rooms under "<namespace>/<room>". main gives the embedded store's
// (boltstore.Tree); nil keeps everything in memory only.
type Store interface {
	Put(ctx context.Context, key string, value []byte) error
	// DeleteTree deletes key and every key below it ("key/…"), at once.
	DeleteTree(ctx context.Context, key string) error
	ForEach(ctx context.Context, fn func(key string, value []byte) error) error
}

// savedNamespace is a namespace as stored: never the doctor token itself.
type savedNamespace struct {
	TokenSHA256 []byte `json:"token_sha256"`
	DoctorUUID  string `json:"doctor_uuid"`
}

// storeTimeout bounds one store write made while a request or an event
// waits for it.
const storeTimeout = 5 * time.Second

// Restore loads the saved namespaces and rooms; call it once, before
// serving. Rooms come back parked: their patient may come back to them
// for RoomTTL. It returns how many of each it restored.
func (s *Service) Restore(ctx context.Context) (namespaces, rooms int, err error) {
	if s.cfg.Store == nil {
		return 0, 0, nil
	}
	// Keys sort a namespace before its rooms ("a" < "a/…").
	err = s.cfg.Store.ForEach(ctx, func(key string, value []byte) error {
		nsID, roomID, isRoom := strings.Cut(key, "/")
		if !isRoom {
			ok, err := s.restoreNamespace(nsID, value)
			if ok {
				namespaces++
			}
			return err
		}
		id, ok := session.NormalizeUUID(roomID)
		ns := s.reg.lookup(nsID)
		if ok && ns != nil {
			s.reg.restoreRoom(id, ns)
			rooms++
		}
		return nil
	})
	if err != nil {
		return namespaces, rooms, fmt.Errorf("restore consultations: %w", err)
	}
	return namespaces, rooms, nil
}

// restoreNamespace registers one stored namespace; a record that does not
// decode is skipped with a warning, not fatal: the others still serve.
func (s *Service) restoreNamespace(id string, value []byte) (bool, error) {
	var sn savedNamespace
	if json.Unmarshal(value, &sn) != nil || len(sn.TokenSHA256) != sha256.Size || !namespaceIDPattern.MatchString(id) {
		s.log.Warn("stored namespace skipped: unreadable record", logKeyNamespace, id)
		return false, nil
	}
	_, added, err := s.reg.addNamespace(id, [sha256.Size]byte(sn.TokenSHA256), sn.DoctorUUID)
	return added, err
}

// saveNamespace stores a new namespace; without it the namespace would
// vanish at the next restart, so a failure fails the request.
func (s *Service) saveNamespace(ctx context.Context, ns *namespace) error {
	if s.cfg.Store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	b, _ := json.Marshal(savedNamespace{TokenSHA256: ns.tokenHash[:], DoctorUUID: ns.doctorUUID}) // cannot fail
	if err := s.cfg.Store.Put(ctx, ns.id, b); err != nil {
		s.log.Error("cannot save namespace", logKeyNamespace, ns.id, logKeyErr, err)
		return errNotSaved
	}
	return nil
}

// deleteSaved deletes a key and what is below it (a namespace and its
// rooms, or one room). A failure is logged: the record comes back at the
// next restart, harmless but stale.
func (s *Service) deleteSaved(ctx context.Context, key string) {
	if s.cfg.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := s.cfg.Store.DeleteTree(ctx, key); err != nil {
		s.log.Error("cannot delete a finished namespace or room from the store", logKeyErr, err)
	}
}

// roomKey is where room id of namespace ns is stored.
func roomKey(ns, id string) string { return ns + "/" + id }

// saveRoom records that a patient entered room id of ns. A failure only
// costs the room's survival of a restart: it is logged, the call goes on.
func (s *Service) saveRoom(id string, ns *namespace) {
	if s.cfg.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.cfg.Store.Put(ctx, roomKey(ns.id, id), []byte("{}")); err != nil {
		s.log.Error("cannot save room: it will not survive a restart", logKeyNamespace, ns.id, logKeyErr, err)
	}
}

// forgetRooms deletes rooms that ended on purpose or expired (their store
// keys).
func (s *Service) forgetRooms(keys ...string) {
	for _, k := range keys {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		s.deleteSaved(ctx, k)
		cancel()
	}
}
