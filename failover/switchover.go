package failover

import (
	"context"
	"time"
)

// switchoverKillWait bounds how long a switchover keeps the old mfsmaster frozen while the
// new master starts.
const switchoverKillWait = 5 * time.Second

// switchOver hands the lease to node to: the VIP goes, mfsmaster stops changing anything,
// every line is shipped, the lease is released to to, and the old mfsmaster is killed once to
// serves.
//
// mfsmaster is killed, never stopped cleanly: a clean stop first dumps the whole metadata
// (2-4 s at 1k inodes in the lab, minutes at scale) while no master serves, and the dump is of
// no use: every line is in the changelog files (written before the client got its answer), the
// drain ships them all or the lease goes to nobody in particular, and this host's files are
// archived when it stands by. The chunk locks the kill leaves are released by the promotion.
//
// With failsafe, the new master tickles this host's connections (tickles.go), so mfsmaster is
// first frozen (SIGSTOP) and killed only once the new master serves: after the VIP is gone
// this host drops what clients send to it, a frozen mfsmaster sends no FIN, and the clients
// wait in their own resends until the tickle resets them toward a master that accepts. Killed
// at once, it would close every connection: each client reconnects into silence and resends
// its SYN only 1 s later (the switchover measured 1.2-1.8 s so). Safety is the same either
// way: the VIP is removed before the lease is released, and a frozen process changes nothing.
func (n *Node) switchOver(t *term, to, why string, start time.Time) {
	if t.arpStop != nil {
		t.arpStop()
	}
	if err := n.d.VIP.Remove(); err != nil {
		n.log.Error("switchover: remove the VIP", "err", err)
	}
	frozen := false
	if t.cov != nil {
		if err := n.d.Master.Freeze(); err != nil {
			n.log.Warn("switchover: freeze mfsmaster; killing it now", "err", err)
		} else {
			frozen = true
		}
	}
	if !frozen {
		if err := n.d.Master.Kill(); err != nil {
			n.log.Error("switchover: kill mfsmaster", "err", err)
		}
	}
	t.arpWG.Wait()
	n.m.Fences.Inc()
	shipped, complete := n.drainShipper(context.Background(), t, 30*time.Second)
	if !complete {
		n.log.Error("switchover: not every line could be shipped; releasing to any standby instead")
		to = ""
	}
	released := true
	if err := t.k.release(context.Background(), shipped, to, why); err != nil {
		n.log.Error("release the lease (it will expire)", "err", err)
		released = false
	} else {
		n.log.Info("lease released", "to", to, "final_version", shipped, "took", time.Since(start).Round(time.Millisecond))
	}
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n.d.Lease.ClearSwitchover(cctx); err != nil {
		n.log.Warn("switchover request not cleared", "err", err)
	}
	if frozen {
		if released && to != "" {
			n.waitServing(to, switchoverKillWait)
		}
		if err := n.d.Master.Kill(); err != nil {
			n.log.Error("switchover: kill the frozen mfsmaster", "err", err)
		}
	}
}

// waitServing waits, up to limit, until the lease names node to as the serving master.
func (n *Node) waitServing(to string, limit time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		if rec, _, err := n.d.Lease.Read(ctx); err == nil && rec.Holder == to && rec.State == StateMaster {
			return
		}
		select {
		case <-ctx.Done():
			n.log.Warn("switchover: the new master does not serve yet; killing the frozen mfsmaster", "to", to, "waited", limit)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
