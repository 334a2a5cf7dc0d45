package cluster

import (
	"errors"
	"fmt"
)

// Why a lease or a node is lost, and why one cannot be taken.
var (
	// ErrExpired: it could not be extended before its deadline (Redis
	// unreachable or too slow); another node may take it over.
	ErrExpired = errors.New("not extended in time (Redis unreachable?)")
	// ErrTakenOver: Redis holds another value: it expired and another node
	// took it, or it was deleted.
	ErrTakenOver = errors.New("taken over by another node, or deleted")
	// ErrNodeLost: the node's heartbeat expired, so everything it held is
	// lost too.
	ErrNodeLost = errors.New("this node's heartbeat expired: it must rejoin")
	// ErrClosed: the node has left the cluster.
	ErrClosed = errors.New("node closed")
	// ErrHeld: another holder has the lease (see HeldError).
	ErrHeld = errors.New("lease held")
)

// HeldError says who holds a lease that could not be taken.
type HeldError struct {
	Session int64
	Holder  string // the holding node incarnation, "id#incarnation"
	Token   int64
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("session %d is held by node %s (fencing token %d)", e.Session, e.Holder, e.Token)
}

func (e *HeldError) Unwrap() error { return ErrHeld }
