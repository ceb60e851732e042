package failover

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mfsha/mfsha/internal/failsafe"
	"github.com/mfsha/mfsha/shipper"
)

// term is one holding of the lease by this node, with what runs under it.
type term struct {
	k       *keeper
	cov     *failsafe.Coverage // nil without failsafe
	members members            // with failsafe: the members record of this term
	sh      Shipper
	shStop  context.CancelFunc
	shDone  chan error // the shipper's result, once
	// streamed: the version the stream held once a promotion shipped the handed-over lines
	// (shipFirst); 0 before, or when nothing was shipped.
	streamed uint64
	arpStop  context.CancelFunc
	arpWG    sync.WaitGroup
	// repairStop ends the repair of lost chunks (repairLost), which runs in arpWG;
	// repairDone is closed when it has ended (nil without one).
	repairStop context.CancelFunc
	repairDone chan struct{}
	// holdSeq numbers the term's holds (askHolds), across its start and its serving: a
	// member refuses a sequence number it already answered for the epoch.
	holdSeq atomic.Uint64
	// stopStarting ends failsafeWhileStarting (idempotent; nil before it ran).
	stopStarting func()
}

// announce (re)starts the VIP's gratuitous ARPs in the background, replacing earlier ones.
func (n *Node) announce(ctx context.Context, t *term) {
	if t.arpStop != nil {
		t.arpStop()
	}
	actx, cancel := context.WithCancel(ctx)
	t.arpStop = cancel
	t.arpWG.Go(func() {
		if err := n.d.VIP.Announce(actx, n.cfg.Announce, n.cfg.Burst); err != nil {
			n.log.Warn("gratuitous ARP", "vip", n.d.VIP.String(), "err", err)
		}
	})
}

// startShipper runs a shipper stamped with the term's epoch.
func (n *Node) startShipper(ctx context.Context, t *term) error {
	sh, err := n.d.NewShipper(t.k.epoch, false)
	if err != nil {
		return fmt.Errorf("shipper: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.sh, t.shStop, t.shDone = sh, cancel, make(chan error, 1)
	go func() { t.shDone <- sh.Run(sctx) }()
	return nil
}

// drainShipper waits, up to limit, until the shipper has shipped the last line of the master's
// files (the master is stopped: they no longer grow), then stops it. It returns the last
// version shipped and whether that is everything.
func (n *Node) drainShipper(ctx context.Context, t *term, limit time.Duration) (uint64, bool) {
	if t.sh == nil {
		return 0, false
	}
	last, _, found, err := shipper.LastLine(n.d.Master.DataPath(), shipper.KindMaster)
	if err != nil {
		n.log.Warn("drain: cannot read the local changelog", "err", err)
	}
	deadline := time.Now().Add(limit)
	complete := false
	for {
		t.sh.ReadNow() // the files no longer grow: no reason to wait for BATCH_DELAY
		next := t.sh.Shipped().Next
		if err == nil && (!found || next > last) {
			complete = true
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case e := <-t.shDone:
			t.shDone <- e
			deadline = time.Now() // it stopped: nothing more will be shipped
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.shStop()
	shipped := uint64(0)
	if next := t.sh.Shipped().Next; next > 0 {
		shipped = next - 1
	}
	if !complete {
		n.log.Warn("drain: not every local line was shipped; a standby's metalogger may have them", "shipped", shipped, "last_local", last)
	}
	return shipped, complete
}

// fence makes sure this host no longer serves: the VIP goes first (clients stop reaching
// it), then mfsmaster: killed at once when kill, else a clean stop bounded by stop (0:
// MasterStopTimeout, what the lease timing rule allows).
func (n *Node) fence(t *term, kill bool, stop time.Duration) {
	start := time.Now()
	if t.arpStop != nil {
		t.arpStop()
	}
	if t.repairStop != nil {
		t.repairStop()
	}
	if err := n.d.VIP.Remove(); err != nil {
		n.log.Error("fence: remove the VIP", "err", err)
	}
	if kill {
		if err := n.d.Master.Kill(); err != nil {
			n.log.Error("fence: kill mfsmaster", "err", err)
		}
	} else if _, err := n.d.Master.Stop(context.Background(), stop); err != nil {
		n.log.Error("fence: stop mfsmaster", "err", err)
	}
	t.arpWG.Wait()
	n.m.Fences.Inc()
	n.log.Warn("fenced", "took", time.Since(start).Round(time.Millisecond))
}

// serve is the master role: it watches the master's health, the lease and switchover
// requests until one of them ends the term, and leaves this host fenced. Its loop never waits
// on NATS: the status, switchover and placement requests run beside it (sidecar), so that a
// NATS that stopped answering cannot delay fencing. It returns true when the term ended only
// because the lease was lost, mfsmaster healthy (see retake).
func (n *Node) serve(ctx context.Context, t *term) (healthy bool) {
	checker := NewChecker(nil, n.d.Master.ProbeAddr(), n.cfg.CheckTimeout, n.cfg.CheckFailures)
	check := time.NewTicker(n.cfg.CheckEvery)
	defer check.Stop()
	var version atomic.Uint64
	switchTo := make(chan string, 1)
	sctx, stopSidecar := context.WithCancel(ctx)
	var sidecar sync.WaitGroup
	sidecar.Go(func() { n.sidecar(sctx, t, &version, switchTo) })
	if t.cov != nil {
		sidecar.Go(func() { n.askHolds(sctx, t) })
		sidecar.Go(func() { n.sendConns(sctx, t) })
	}
	defer func() { stopSidecar(); sidecar.Wait() }()
	n.checkedAt.Store(0)
	n.cur.Store(t)
	defer n.cur.Store(nil)
	defer n.d.Live.Done(loopMaster)
	for {
		n.d.Live.Tick(loopMaster)
		select {
		case <-ctx.Done():
			n.handOver(t, "", "the node was stopped")
			return false
		case <-n.d.Master.Exited():
			n.failed(t, "mfsmaster exited")
			return false
		case <-t.k.lost:
			t.shStop() // first: it must not append once the lease may be another's
			n.fence(t, false, 0)
			return true
		case err := <-t.shDone:
			t.shDone <- err
			if errors.Is(err, shipper.ErrNotSoleWriter) {
				n.log.Error("another writer appended to the stream: fencing", "err", err)
				n.fence(t, true, 0)
				t.k.markStopped()
				return false
			}
			if err != nil {
				n.log.Error("shipping stopped; the master keeps serving but standbys fall behind", "err", err)
				n.m.ShipStopped.Set(1)
			}
			t.shDone = make(chan error, 1) // no second report
		case to := <-switchTo:
			n.log.Info("switchover requested", "to", to)
			n.handOver(t, to, "switchover to "+to)
			return false
		case <-check.C:
			down, v, err := checker.Check(ctx)
			if down {
				n.failed(t, fmt.Sprintf("health check failed %d times: %v", n.cfg.CheckFailures, err))
				return false
			}
			if err == nil {
				n.checkedAt.Store(time.Now().UnixNano())
				version.Store(v)
				n.m.MasterVersion.Set(float64(v))
			}
		}
	}
}

// sidecar publishes the master's status, looks for a switchover request addressed to this
// term, and keeps the lease's NATS leader off this host, every RenewEvery, each request
// bounded by RenewTimeout.
func (n *Node) sidecar(ctx context.Context, t *term, version *atomic.Uint64, switchTo chan<- string) {
	tick := time.NewTicker(n.cfg.RenewEvery)
	defer tick.Stop()
	var lastPlacement time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n.publish(ctx, NodeStatus{Role: string(RoleMaster), Epoch: t.k.epoch(), Version: version.Load(), Timeline: t.sh.Shipped().Timeline})
		n.updateMembers(ctx, t)
		rctx, cancel := context.WithTimeout(ctx, n.cfg.RenewTimeout)
		req, ok, err := n.d.Lease.Switchover(rctx)
		cancel()
		if err == nil && ok && req.Epoch == t.k.epoch() && req.To != n.cfg.Name {
			select {
			case switchTo <- req.To:
			default:
			}
		}
		if n.d.Placement != nil && time.Since(lastPlacement) > 5*time.Second {
			lastPlacement = time.Now()
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if err := n.d.Placement(pctx); err != nil && ctx.Err() == nil {
				n.log.Warn("lease placement", "err", err)
			}
			cancel()
		}
	}
}

// failed ends a term whose master failed: kill what is left of it, ship what its files hold
// (briefly), and release the lease at once so that a standby need not wait for the TTL.
func (n *Node) failed(t *term, why string) {
	n.log.Error("master failed: fencing and releasing the lease", "why", why)
	n.fence(t, true, 0)
	shipped, _ := n.drainShipper(context.Background(), t, n.cfg.DrainTimeout)
	if err := t.k.release(context.Background(), shipped, "", why); err != nil {
		n.log.Error("release the lease (it will expire)", "err", err)
		return
	}
	n.log.Info("lease released", "final_version", shipped)
}

// handOver ends a term on purpose: mfsmaster stops, every line is shipped, then the lease is
// released (to node to, when set: a switchover, switchover.go).
func (n *Node) handOver(t *term, to, why string) {
	start := time.Now()
	if to != "" {
		n.switchOver(t, to, why, start)
		return
	}
	// A node that is stopped stops mfsmaster cleanly (the lease is renewed meanwhile: it may
	// take its time): with no standby, its files are what the next start loads.
	n.finishRepairs(t, repairOnStop)
	n.fence(t, false, time.Minute)
	shipped, _ := n.drainShipper(context.Background(), t, 30*time.Second)
	if err := t.k.release(context.Background(), shipped, "", why); err != nil {
		n.log.Error("release the lease (it will expire)", "err", err)
	} else {
		n.log.Info("lease released", "final_version", shipped, "took", time.Since(start).Round(time.Millisecond))
	}
}
