package failover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mfsha/mfsha/internal/chunklock"
)

// startHeld starts mfsmaster (-a) for the term of keeper k and returns the version it serves.
// The start is stopped (the child killed) as soon as the lease is lost: the error then wraps
// ErrLeaseLost. See keeper.whileHeld.
func (n *Node) startHeld(ctx context.Context, k *keeper) (uint64, error) {
	sctx, cancel := k.whileHeld(ctx)
	defer cancel()
	v, err := n.d.Master.Start(sctx, true)
	if err != nil {
		if cause := context.Cause(sctx); errors.Is(cause, ErrLeaseLost) {
			return 0, fmt.Errorf("start mfsmaster: %w (%w)", cause, err)
		}
		return 0, fmt.Errorf("start mfsmaster: %w", err)
	}
	if lost(k) { // it served just as the lease went: the fence follows
		return 0, fmt.Errorf("start mfsmaster: %w", errLostWhileStarting)
	}
	return v, nil
}

// takeOver makes this node the master on its own files (boot): take the lease, stop any
// master running without it, start ours, claim the VIP, ship.
//
// With restored set (DATA_PATH holds a point-in-time restore, see restoredLocal), the new
// timeline reaches the stream before any client can write: the restore's first line (an IDLE)
// is written before mfsmaster starts, and the VIP is claimed only once the shipper has shipped
// it. Why: until then the stream's newest timeline is the old one, and a standby that
// materialized it (the state the operator restored away from: the rm -rf) would count as
// current and could be promoted if this master died, resurrecting that state and losing every
// write made on the restore. Once line V is in the stream on the new timeline, such a standby
// is not current (Standby.Lag) until it resynchronizes from the new timeline's first snapshot,
// which the shipper uploads right after that line.
func (n *Node) takeOver(ctx context.Context, rec LeaseRecord, rev uint64, why string, restored bool) (*term, error) {
	sent := time.Now()
	r := LeaseRecord{Holder: n.cfg.Name, Addr: n.nodeAddr(), State: StatePromoting, Since: sent.UTC()}
	// rev is 0 (create), a released record's, or our own previous record's (a restart).
	epoch, err := n.d.Lease.Acquire(ctx, r, rev)
	if err != nil {
		return nil, err
	}
	r.Epoch = epoch
	n.promiser.ObserveEpoch(epoch)
	cov := n.newCoverage()
	k := hold(ctx, n.d.Lease, n.cfg, n.log, n.m, cov, r, epoch, sent)
	t := &term{k: k, cov: cov}
	n.failsafeWhileStarting(ctx, t)
	defer t.stopStarting()
	n.log.Info("lease taken with the local files", "epoch", epoch, "why", why)
	abort := func(err error) (*term, error) { return n.abandon(t, "start failed", err) }
	if found, err := n.d.Master.StopForeign(ctx); err != nil {
		return abort(err)
	} else if found {
		n.log.Info("stopped the mfsmaster that ran without mfsha; starting it under the lease")
	}
	if restored {
		if err := startTimeline(n.d.Master.DataPath(), time.Now()); err != nil {
			return abort(err)
		}
	}
	want, err := prepareLocal(n.d.Master.DataPath(), n.log)
	if err != nil {
		return abort(err)
	}
	var released []chunklock.Lock
	if !restored {
		// The master that ran on these files is dead: release the chunk locks it left held,
		// or a client retrying its write waits out the 120 s lock (see releaseLocalChunkLocks).
		// A restore's files were written by the restorer, not left by a dead master.
		first, added, locks, err := releaseLocalChunkLocks(n.d.Master.DataPath(), max(want, 1)-1, time.Now(), n.log)
		if err != nil {
			return abort(err)
		}
		released = locks
		if added > 0 {
			want = first + added
		}
	}
	if lost(k) { // preparing big files can outlast the lease: never claim the VIP without it
		return abort(errLostWhileStarting)
	}
	if !restored {
		if err := n.addVIP(); err != nil {
			return abort(err)
		}
		n.announce(ctx, t)
	}
	v, err := n.startHeld(ctx, k)
	if err != nil {
		return abort(err)
	}
	if v < want {
		return abort(fmt.Errorf("mfsmaster -a serves version %d, but the local changelog goes up to %d (UNLOCK lines added included): refusing to serve without those lines", v, want-1))
	}
	if restored {
		if err := n.startShipper(ctx, t); err != nil {
			return abort(err)
		}
		if err := n.waitNewTimeline(ctx, t, want-1); err != nil {
			return abort(err)
		}
		if err := n.addVIP(); err != nil {
			return abort(err)
		}
	}
	n.announce(ctx, t)
	if err := k.update(ctx, func(r *LeaseRecord) { r.State = StateMaster; r.Since = time.Now().UTC() }); err != nil {
		return abort(err)
	}
	if !restored {
		if err := n.startShipper(ctx, t); err != nil {
			return abort(err)
		}
	}
	n.repairLost(ctx, t, released, nil)
	n.forgetRestored() // served now: a later start follows the ordinary rule
	n.log.Info("this node is the master", "epoch", epoch)
	return t, nil
}
