package failover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mfsha/mfsha/internal/buildinfo"
	"github.com/mfsha/mfsha/restorer"
)

// standby is the standby role: it keeps metadata materialized and watches the lease; when the
// lease is free (or handed to this node) it promotes this node and returns the new term. It
// returns nil when ctx ends.
func (n *Node) standby(ctx context.Context) *term {
	n.ensureNotServing(ctx)
	if err := n.archiveLocal(ctx); err != nil {
		n.log.Error("standby: the local master's files could not be archived; not promotable until they are", "err", err)
	}
	started := time.Now()
	poll := min(n.cfg.CheckEvery, 100*time.Millisecond)
	var failed time.Time // when this node's last promotion failed
	for ctx.Err() == nil {
		sb, err := n.d.NewStandby()
		if err != nil {
			n.log.Error("standby: cannot open the standby", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = sb.Run(sctx) }()
		rec, rev, take := n.watch(ctx, sb, started, failed, poll)
		stop()
		<-done
		if !take {
			return nil
		}
		t, err := n.promote(ctx, sb, rec, rev)
		if err == nil {
			return t
		}
		if errors.Is(err, ErrLeaseHeld) {
			// Another node was faster, or a NATS replica expired the lease before its leader did.
			n.log.Info("the lease was taken first (by another node, or not yet expired on the NATS leader)")
			sleep(ctx, poll)
		} else {
			n.log.Error("promotion failed; standing by again", "err", err)
			failed = time.Now()
			sleep(ctx, n.cfg.RenewEvery)
		}
		n.ensureNotServing(ctx)
		if err := n.archiveLocal(ctx); err != nil {
			n.log.Error("standby: archive", "err", err)
		}
	}
	return nil
}

// watch polls the lease until this node should take it (take true) or ctx ends. failed is
// when this node's last promotion failed (zero if none did).
func (n *Node) watch(ctx context.Context, sb Standby, started, failed time.Time, poll time.Duration) (LeaseRecord, uint64, bool) {
	t := time.NewTicker(poll)
	defer t.Stop()
	defer n.d.Live.Done(loopStandby)
	var lastStatus, freeSince time.Time
	deferredTo := ""         // the standby this one last said it leaves the promotion to
	var saidWhyNot time.Time // when this node last said why it may not take an expired lease
	for {
		n.d.Live.Tick(loopStandby)
		rec, rev, err := n.d.Lease.Read(ctx)
		if err == nil {
			n.promiser.ObserveEpoch(rec.Epoch)
		}
		free := err == nil && Free(rec, rev, n.cfg.Name)
		mayTake, whyNot := true, ""
		if free && rev == 0 {
			mayTake, whyNot = n.mayTakeExpired(ctx)
		}
		if !free {
			freeSince = time.Time{}
		} else if freeSince.IsZero() {
			// Say at once how far this standby got, for the others' aheadOfMe.
			freeSince, lastStatus = time.Now(), time.Now()
			n.publishStandby(ctx, sb)
		}
		switch {
		case err != nil:
			if ctx.Err() == nil {
				n.log.Debug("standby: lease not readable", "err", err)
			}
		case free:
			handed := rec.To == n.cfg.Name
			_, current, why := sb.Lag()
			var ahead NodeStatus
			switch {
			case !current:
				// Taking the lease would only fail and release it again, in a loop: wait
				// until the standby has resynchronized (after a point-in-time restore, once
				// the new timeline's first snapshot is in the stream).
				n.log.Debug("standby: the lease is free but this standby cannot promote yet", "why", why)
			case !mayTake:
				if time.Since(saidWhyNot) >= 2*time.Second {
					saidWhyNot = time.Now()
					n.log.Info("standby: the lease expired but this node may not take it yet", "why", whyNot)
				}
			case !handed && time.Since(started) < n.cfg.StartGrace:
				n.log.Debug("standby: the lease is free; waiting out START_GRACE")
			case !handed && time.Since(failed) < n.cfg.LeaseTTL && n.otherStandby(ctx, &ahead):
				// Whatever made this node's promotion fail (its mfsmaster, its disk, its
				// data) may fail the next one too: another live standby tries first, for
				// at most LEASE_TTL after the failure; then this one tries again.
				if deferredTo == ahead.Name {
					break
				}
				deferredTo = ahead.Name
				n.log.Info("the lease is free, but this node's last promotion failed: leaving it to another standby", "standby", ahead.Name,
					"for_at_most", (n.cfg.LeaseTTL - time.Since(failed)).Round(time.Millisecond))
			case !handed && time.Since(freeSince) < n.cfg.LeaseTTL && n.aheadOfMe(ctx, sb, &ahead):
				if deferredTo == ahead.Name {
					break
				}
				deferredTo = ahead.Name
				n.log.Info("the lease is free, but another standby holds more lines: leaving it the promotion", "standby", ahead.Name,
					"its_next_version", ahead.Version, "mine", sb.Local()+1, "for_at_most", (n.cfg.LeaseTTL - time.Since(freeSince)).Round(time.Millisecond))
			default:
				n.log.Info("the lease is free: promoting", "released_by", rec.Holder, "reason", rec.Reason, "final", rec.Final, "handed_to_me", handed)
				return rec, rev, true
			}
		}
		if time.Since(lastStatus) >= n.cfg.RenewEvery {
			lastStatus = time.Now()
			n.publishStandby(ctx, sb)
		}
		select {
		case <-ctx.Done():
			return LeaseRecord{}, 0, false
		case <-t.C:
		}
	}
}

// publishStandby publishes this standby's position: Version is the next line its local copy
// lacks (the stream and its metalogger merged).
func (n *Node) publishStandby(ctx context.Context, sb Standby) {
	m := sb.Materialized()
	st := NodeStatus{Role: string(RoleStandby), Version: sb.Local() + 1, Materialized: m.Version, Timeline: m.Timeline}
	if c, ok := sb.(foldCoster); ok {
		if fc, ok := c.FoldCost(); ok {
			st.Fold = &fc
		}
	}
	n.publish(ctx, st)
}

// aheadOfMe tells whether another standby, seen alive within LEASE_TTL on the same timeline,
// holds more lines than this one; it fills ahead with its status.
//
// Why: when the old master dies holding lines it never shipped, only the standbys whose
// metalogger got them have them, and a promotion of another one would serve without them
// (the first one's lines would then be archived, never shipped). So a standby that is behind
// leaves the lease to the one ahead, for at most LEASE_TTL after it saw the lease free: if
// that one is gone or cannot promote, this one takes the lease after all (the lines it lacks
// are lost either way, but the cluster serves). Equal positions race; the compare-and-set on
// the lease picks one. Statuses are published every RENEW_EVERY and once more as soon as a
// standby sees the lease free; a status older than that may hide a few lines.
func (n *Node) aheadOfMe(ctx context.Context, sb Standby, ahead *NodeStatus) bool {
	mine, tl := sb.Local()+1, sb.Materialized().Timeline
	for _, o := range n.otherLiveStandbys(ctx) {
		if o.Timeline == tl && o.Version > mine {
			*ahead = o
			return true
		}
	}
	return false
}

// otherStandby tells whether another standby was seen alive within LEASE_TTL; it fills o
// with its status.
func (n *Node) otherStandby(ctx context.Context, o *NodeStatus) bool {
	if others := n.otherLiveStandbys(ctx); len(others) > 0 {
		*o = others[0]
		return true
	}
	return false
}

// otherLiveStandbys lists the other nodes that published a standby status within LEASE_TTL
// (none when the statuses cannot be read).
func (n *Node) otherLiveStandbys(ctx context.Context) []NodeStatus {
	nodes, err := n.d.Lease.Nodes(ctx)
	if err != nil {
		n.log.Debug("standby: the other standbys' statuses are not readable", "err", err)
		return nil
	}
	var live []NodeStatus
	for _, o := range nodes {
		if o.Name != n.cfg.Name && o.Role == string(RoleStandby) && time.Since(o.Updated) <= n.cfg.LeaseTTL {
			live = append(live, o)
		}
	}
	return live
}

// ensureNotServing removes the VIP and stops any mfsmaster left running on this host's data.
func (n *Node) ensureNotServing(ctx context.Context) {
	if err := n.d.VIP.Remove(); err != nil {
		n.log.Error("remove the VIP", "err", err)
	}
	if found, err := n.d.Master.StopForeign(ctx); err != nil {
		n.log.Error("stop a master this node does not own", "err", err)
	} else if found {
		n.log.Warn("stopped an mfsmaster that ran on this host without the lease")
	}
}

// promote makes this node the master: take the lease, claim the VIP, finish the standby's
// metadata with every line there is, start mfsmaster on it, ship. The VIP comes first: while
// mfsmaster loads, clients and chunkservers that reach for it are refused at once instead of
// waiting for a dead MAC, so they retry quickly (see the shared notes on SYN back-off).
func (n *Node) promote(ctx context.Context, sb Standby, rec LeaseRecord, rev uint64) (*term, error) {
	start := time.Now()
	final := uint64(0)
	if rec.State == StateReleased {
		final = rec.Final
	}
	sent := time.Now()
	epoch, err := n.d.Lease.Acquire(ctx, LeaseRecord{Holder: n.cfg.Name, Addr: n.nodeAddr(), State: StatePromoting, Since: sent.UTC()}, rev)
	if err != nil {
		return nil, err
	}
	n.promiser.ObserveEpoch(epoch)
	cov := n.newCoverage()
	k := hold(ctx, n.d.Lease, n.cfg, n.log, n.m, cov, LeaseRecord{Holder: n.cfg.Name, Addr: n.nodeAddr(), State: StatePromoting, Since: sent.UTC(), Epoch: epoch}, epoch, sent)
	t := &term{k: k, cov: cov}
	n.failsafeWhileStarting(ctx, t)
	defer t.stopStarting()
	n.log.Info("lease taken", "epoch", epoch)
	abort := func(err error) (*term, error) { return n.abandon(t, "promotion failed", err) }
	// A switchover (the lease handed to this node) claims the VIP only once mfsmaster accepts:
	// the old master dropped the VIP before it stopped mfsmaster, so a client's reconnection
	// meets silence and its SYN, resent after 1 s, reaches the new master; claimed first, it
	// is refused at once and the client sleeps 2 s (issue 11 measured 0.7 s against that).
	// After a failure the VIP comes first (see above), unless this standby's mfsmaster loads
	// in well under the client's 1 s SYN resend (quickLoad): then silence is quicker too.
	vipLate := rec.State == StateReleased && rec.To == n.cfg.Name
	if !vipLate {
		vipLate = n.quickLoad(sb)
	}
	if !vipLate {
		if err := n.addVIP(); err != nil {
			return abort(err)
		}
		n.announce(ctx, t)
	}
	pos, last, err := sb.Finish(ctx, final, 2*n.cfg.DrainTimeout)
	if err != nil {
		return abort(fmt.Errorf("finish the standby's metadata: %w", err))
	}
	if lost(k) {
		return abort(errors.New("lease lost while promoting"))
	}
	if err := n.archiveFiles(n.d.Master.DataPath(), "before-promotion", ""); err != nil {
		return abort(err)
	}
	if err := sb.HandOver(n.d.Master.DataPath()); err != nil {
		return abort(err)
	}
	// After anything but a switchover the old master may have used chunk ids nobody saw.
	unlocked, released, err := releaseChunkLocks(n.d.Master.DataPath(), time.Now(), rec.To != n.cfg.Name, n.log)
	if err != nil {
		return abort(fmt.Errorf("release the chunk locks the old master left: %w", err))
	}
	// The stream first: a promotion that fails from here on must not take with it the lines
	// only this standby had (see shipFirst). Without such lines there is nothing to protect
	// (the UNLOCK and NEXTCHUNKID lines are this promotion's own: the next makes its own).
	handed := time.Now()
	if streamed := sb.Streamed(); last > streamed {
		if t.streamed, err = n.shipFirst(ctx, t, last+unlocked); err != nil {
			return abort(err)
		}
	}
	folded := time.Now()
	v, err := n.startHeld(ctx, k)
	if err != nil {
		return abort(err)
	}
	if v != last+1+unlocked {
		return abort(fmt.Errorf("mfsmaster -a serves version %d, want %d (metadata %d + the lines up to %d + %d added: UNLOCK, NEXTCHUNKID): refusing to serve without them", v, last+1+unlocked, pos.Version, last, unlocked))
	}
	serving := time.Now()
	if vipLate {
		if err := n.addVIP(); err != nil {
			return abort(err)
		}
	}
	n.announce(ctx, t)
	n.tickleClients(ctx, t)
	if err := k.update(ctx, func(r *LeaseRecord) { r.State = StateMaster; r.Since = time.Now().UTC() }); err != nil {
		return abort(fmt.Errorf("lease: %w", err))
	}
	if err := n.startShipper(ctx, t); err != nil {
		return abort(err)
	}
	n.repairLost(ctx, t, released, sb)
	n.m.Promotions.Inc()
	n.m.PromotionSeconds.Set(time.Since(start).Seconds())
	n.log.Info("promoted: this node is the master", "epoch", epoch, "version", v, "materialized", pos.Version, "timeline", pos.Timeline,
		"final_from_old_master", final, "drain", handed.Sub(start).Round(time.Millisecond), "stream_first", folded.Sub(handed).Round(time.Millisecond), "mfsmaster_start", serving.Sub(folded).Round(time.Millisecond),
		"total", time.Since(start).Round(time.Millisecond))
	return t, nil
}

// abandon ends a term that never served: fence, then release the lease with the reason, and
// with the version the stream holds from this term (shipFirst), which the next promoter then
// waits for.
func (n *Node) abandon(t *term, what string, err error) (*term, error) {
	if t.stopStarting != nil {
		t.stopStarting()
	}
	n.fence(t, true, 0)
	if rerr := t.k.release(context.Background(), t.streamed, "", what+": "+short(err)); rerr != nil {
		n.log.Warn("release after: "+what, "err", rerr)
	}
	return nil, err
}

func lost(k *keeper) bool {
	select {
	case <-k.lost:
		return true
	default:
		return false
	}
}

// publish writes this node's status, best effort.
func (n *Node) publish(ctx context.Context, s NodeStatus) {
	s.Name, s.Addr, s.Updated, s.Failsafe = n.cfg.Name, n.nodeAddr(), time.Now().UTC(), n.failsafeURL()
	s.MooseFS = n.d.Master.Mfsmaster().Version.String()
	s.Mfsha = buildinfo.Get().Version
	pctx, cancel := context.WithTimeout(ctx, n.cfg.RenewTimeout)
	defer cancel()
	if err := n.d.Lease.PutNode(pctx, s); err != nil && ctx.Err() == nil {
		n.log.Debug("status not published", "err", err)
	}
}

// foldCoster is a Standby that knows what its folds cost (*restorer.Standby does).
type foldCoster interface {
	FoldCost() (restorer.FoldCost, bool)
}

var _ foldCoster = (*restorer.Standby)(nil)

// quickLoadLimit: a promotion whose mfsmaster is expected to accept within this claims the VIP
// only once it does (measured in issue 11: with 1k inodes a silent VIP gave a 1.1 s stall
// against 3.1 s for a refused one; with 36 MB of metadata silence lost, 7.1 s against 5.1 s).
const quickLoadLimit = 800 * time.Millisecond

// quickLoad tells whether sb's last fold says mfsmaster loads this metadata, with the lines
// pending, within quickLoadLimit: the fold's whole mfsmaster run (load, replay, dump) bounds
// the load from above. Unknown (no fold yet): false.
func (n *Node) quickLoad(sb Standby) bool {
	c, ok := sb.(foldCoster)
	if !ok {
		return false
	}
	fc, ok := c.FoldCost()
	return ok && time.Duration((fc.MfsmasterSeconds+fc.PendingReplay)*float64(time.Second)) < quickLoadLimit
}
