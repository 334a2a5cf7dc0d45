package session

import (
	"context"
	"math/rand/v2"
)

// LostHomes is a Homes that knows which sessions have lost their home: the
// sessions its lost nodes held, and those let go while still running. A
// cluster's claim then costs what was lost, not what the store holds; a
// Manager whose Homes lacks it reads the running sessions of its Store.
type LostHomes interface {
	// Lost returns the running sessions no live node holds and whose home
	// was lost, for this node to try to claim.
	Lost(ctx context.Context) ([]int64, error)
}

// RunningLister is a Store that lists its running sessions without
// reading the others (the history), which a store keeps for good.
type RunningLister interface {
	// ListRunning returns the ids of the running sessions.
	ListRunning(ctx context.Context) ([]int64, error)
}

// toClaim returns the sessions Claim tries, in random order: survivors
// racing for one lost node's sessions then mostly try different ones, and
// share them.
func (m *Manager) toClaim(ctx context.Context) ([]int64, error) {
	var ids []int64
	var err error
	if lh, ok := m.cfg.Homes.(LostHomes); ok {
		ids, err = lh.Lost(ctx)
	} else {
		ids, err = m.listRunning(ctx)
	}
	if err != nil {
		return nil, err
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return ids, nil
}

// listRunning returns the ids of the running sessions of the store: from
// its running index when it keeps one, else from every record.
func (m *Manager) listRunning(ctx context.Context) ([]int64, error) {
	if rl, ok := m.cfg.Store.(RunningLister); ok {
		return rl.ListRunning(ctx)
	}
	recs, err := m.cfg.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, r := range recs {
		if r.Running {
			ids = append(ids, r.ID)
		}
	}
	return ids, nil
}
