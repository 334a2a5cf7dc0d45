package childproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/rehabrtc/rehabrtc/internal/session"
)

// peersTimeout bounds a Peers call: a listing waits for the slowest child.
const peersTimeout = 300 * time.Millisecond

// child is the parent's handle on one running child process: a
// session.Endpoint whose pages are served by the child on its port (the
// Runner routes the port with no handler: the gateway proxies), and whose
// Done channel closes if the process dies.
type child struct {
	cmd   *exec.Cmd
	conn  *conn
	gate  session.Gate
	ice   PeerICE // nil: no per-peer ICE servers
	sid   int64   // the session, for ice
	log   *slog.Logger
	mode  Mode
	grace time.Duration
	out   *logWriter // stderr, for error messages

	ready     chan struct{} // closed at the first "ready"
	readyOnce sync.Once
	done      chan struct{} // closed once the process is reaped and the reader ended
	err       error         // why the process ended; written before done is closed
	wg        sync.WaitGroup

	unroute func() // takes the port out of the Runner's routes; set by Runner.Start

	peerMu sync.Mutex // guards peers
	peers  []session.Peer
}

var _ session.Endpoint = (*child)(nil)

// spawn starts cmd with a control channel on fd 3 and the goroutines that
// read it and reap the process.
// ice (nil: none) answers the child's "ice" questions for session sid.
func spawn(cmd *exec.Cmd, gate session.Gate, ice PeerICE, sid int64, log *slog.Logger, mode Mode, grace time.Duration) (*child, error) {
	parent, childEnd, err := socketPair()
	if err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, conn: newConn(parent), gate: gate, ice: ice, sid: sid, log: log, mode: mode, grace: grace,
		ready: make(chan struct{}), done: make(chan struct{}), unroute: func() {}}
	ch.out = newLogWriter(log, "stderr")
	stdout := newLogWriter(log, "stdout")
	cmd.Stdout, cmd.Stderr = stdout, ch.out
	cmd.ExtraFiles = []*os.File{childEnd}
	err = cmd.Start()
	childEnd.Close() // the child has its copy
	if err != nil {
		parent.Close()
		return nil, err
	}
	ch.log = log.With(logKeyPID, cmd.Process.Pid)
	stdout.setLogger(ch.log)
	ch.out.setLogger(ch.log)
	readerDone := make(chan struct{})
	ch.wg.Go(func() {
		defer close(readerDone)
		ch.conn.run(ch.handle)
	})
	ch.wg.Go(func() { ch.reap(readerDone) })
	return ch, nil
}

func (ch *child) pid() int { return ch.cmd.Process.Pid }

// reap waits for the process, kills whatever it left in its process group,
// and closes done.
func (ch *child) reap(readerDone <-chan struct{}) {
	err := ch.cmd.Wait()
	killGroup(ch.pid(), syscall.SIGKILL)
	ch.conn.close()
	<-readerDone
	if err == nil {
		err = errors.New("exited")
	}
	ch.err = err
	close(ch.done)
}

// awaitReady waits for the child's "ready".
func (ch *child) awaitReady(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch.ready:
		return nil
	case <-ch.done:
		if tail := ch.out.tail(); tail != "" {
			return fmt.Errorf("exited before it was ready (%v): %s", ch.err, tail)
		}
		return fmt.Errorf("exited before it was ready (%v)", ch.err)
	case <-t.C:
		return fmt.Errorf("not ready within %s", d)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// abort kills a child that never became ready and waits for it.
func (ch *child) abort() {
	killGroup(ch.pid(), syscall.SIGKILL)
	<-ch.done
	ch.wg.Wait()
}

// handle answers the child's questions; it runs in the control reader.
func (ch *child) handle(m Msg) {
	switch m.Op {
	case opReady:
		ch.readyOnce.Do(func() { close(ch.ready) })
	case opAdmit:
		ctx, cancel := context.WithTimeout(context.Background(), gateTimeout)
		id, err := ch.gate.Admit(ctx, m.Key, m.UUID)
		cancel()
		r := Msg{Op: opReply, ID: m.ID}
		if err == nil {
			r.OK, r.Kind, r.UUID = true, id.Kind, id.UUID
		}
		ch.conn.send(r)
	case opICE:
		ch.conn.send(iceReply(ch.ice, ch.sid, m))
	case opValid:
		ctx, cancel := context.WithTimeout(context.Background(), gateTimeout)
		ok := ch.gate.Valid(ctx, m.Key)
		cancel()
		ch.conn.send(Msg{Op: opReply, ID: m.ID, OK: ok})
	default:
		ch.log.Debug("unknown control message from child", logKeyOp, m.Op)
	}
}

// Ready is closed once the child said "ready" (before Runner.Start
// returns it).
func (ch *child) Ready() <-chan struct{} { return ch.ready }

// Kick asks the child to disconnect a removed invitee. OpenTera's EasyRTC
// server cannot: its peers stay until the session stops, as in OpenTera.
func (ch *child) Kick(id session.Identity) {
	if ch.mode != Native {
		ch.log.Info("EasyRTC child cannot disconnect a removed invitee", logKeyKind, id.Kind, logKeyUUID, id.UUID)
		return
	}
	if err := ch.conn.send(Msg{Op: opKick, Kind: id.Kind, UUID: id.UUID}); err != nil {
		ch.log.Warn("cannot tell child to disconnect a removed invitee", logKeyErr, err)
	}
}

// Peers asks the child who is connected; a child that does not answer in
// time gets its last known list.
func (ch *child) Peers() []session.Peer {
	if ch.mode != Native {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), peersTimeout)
	defer cancel()
	r, err := ch.conn.call(ctx, Msg{Op: opPeers})
	ch.peerMu.Lock()
	defer ch.peerMu.Unlock()
	if err == nil {
		ch.peers = r.Peers
	}
	return slices.Clone(ch.peers)
}

// Stop tells the child to end (its peers learn why), then terminates it if
// it has not exited within the grace period: SIGTERM to its process group,
// SIGKILL after another grace. It returns once the child is reaped.
func (ch *child) Stop(ctx context.Context, why session.StopReason) error {
	reason := reasonShutdown
	if why == session.StopEnded {
		reason = reasonEnded
	}
	ch.unroute()
	ch.conn.send(Msg{Op: opStop, Reason: reason}) // fails if it has died: fine
	var err error
	if !ch.waitDone(ctx, ch.grace) {
		err = errors.New("child did not exit when told to stop; terminated")
		killGroup(ch.pid(), syscall.SIGTERM)
		if !ch.waitDone(context.Background(), termGrace) {
			killGroup(ch.pid(), syscall.SIGKILL)
			<-ch.done
		}
	}
	ch.wg.Wait()
	return err
}

// waitDone waits up to d (and no longer than ctx) for the child to be reaped.
func (ch *child) waitDone(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch.done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// Done is closed once the child process has ended, stopped or crashed.
func (ch *child) Done() <-chan struct{} { return ch.done }

// Err tells why the child ended; nil while it runs.
func (ch *child) Err() error {
	select {
	case <-ch.done:
		return ch.err
	default:
		return nil
	}
}
