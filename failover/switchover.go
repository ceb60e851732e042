package failover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mfsha/mfsha/shipper"
)

// flushWait bounds how long a switchover waits for mfsmaster's last lines to reach its files.
const flushWait = 2 * time.Second

// switchOver hands the lease to node to: the clients are held back (gate.go), the VIP goes,
// mfsmaster's last lines reach its files, mfsmaster is killed, every line is shipped, and the
// lease is released to to.
//
// mfsmaster is killed, never stopped cleanly: a clean stop first dumps the whole metadata
// (2-4 s at 1k inodes in the lab, minutes at scale) while no master serves, and the dump is of
// no use: the drain ships every line, or the lease goes to nobody in particular, and this
// host's files are archived when it stands by. The chunk locks the kill leaves are released by
// the promotion.
//
// But not at any instant: mfsmaster answers a client before its line is in changelog.0.mfs.
// With CHANGELOG_SAVE_MODE 0 (the default) the line goes to a background writer process
// through a queue, and the reply and that queue are written in the same turn of its event
// loop, in either order; a kill between the two took back a change the client was told was
// made (found by the switchover bench: an acknowledged file read back empty). So, once the VIP
// is gone (no new requests reach it), the switchover waits until the version mfsmaster reports
// is right after the last line in its files (waitFlushed): every change it ever reported is
// then on disk. Lines it makes after that (its own timers) were never acknowledged to anyone.
//
// Its clients hear nothing meanwhile and after: their packets to the VIP are dropped here, and
// they wait in their own resends until the new master tickles them (tickles.go) toward a
// master that accepts.
func (n *Node) switchOver(t *term, to, why string, start time.Time) {
	if t.arpStop != nil {
		t.arpStop()
	}
	if t.repairStop != nil {
		t.repairStop()
	}
	held := n.holdClients()
	if err := n.d.VIP.Remove(); err != nil {
		n.log.Error("switchover: remove the VIP", "err", err)
	}
	n.waitFlushed(flushWait)
	if err := n.d.Master.Kill(); err != nil {
		n.log.Error("switchover: kill mfsmaster", "err", err)
	}
	if held {
		n.openGate()
	}
	t.arpWG.Wait()
	n.m.Fences.Inc()
	shipped, complete := n.drainShipper(context.Background(), t, 30*time.Second)
	if !complete {
		n.log.Error("switchover: not every line could be shipped; releasing to any standby instead")
		to = ""
	}
	if err := t.k.release(context.Background(), shipped, to, why); err != nil {
		n.log.Error("release the lease (it will expire)", "err", err)
	} else {
		n.log.Info("lease released", "to", to, "final_version", shipped, "took", time.Since(start).Round(time.Millisecond))
	}
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n.d.Lease.ClearSwitchover(cctx); err != nil {
		n.log.Warn("switchover request not cleared", "err", err)
	}
}

// waitFlushed waits, up to limit, until the version mfsmaster reports (the next change's) is
// right after the last line of its changelog files.
func (n *Node) waitFlushed(limit time.Duration) {
	var last uint64
	v, err := n.pollVersion(limit, 5*time.Millisecond, func(v uint64) (bool, error) {
		l, _, found, err := shipper.LastLine(n.d.Master.DataPath(), shipper.KindMaster)
		last = l
		return err == nil && found && l+1 >= v, err
	})
	if err != nil {
		n.log.Warn("switchover: mfsmaster's last lines may not be in its files; killing it anyway", "reported_version", v, "last_line", last, "err", err, "waited", limit)
	}
}

// turnWait bounds how long a switchover waits, clients held back, for mfsmaster's last turn.
const turnWait = 500 * time.Millisecond

// holdClients closes the client gate, if there is one, and waits until mfsmaster has gone
// through a turn of its event loop without a change (waitTurn): what it queued for its
// chunkservers before, such as the create of a chunk it just gave a client, has then been
// written while the VIP still carries it. It reports whether the gate is closed.
func (n *Node) holdClients() bool {
	g := n.d.Gate
	if g == nil {
		return false
	}
	start := time.Now()
	if err := g.Close(); err != nil {
		n.log.Error("switchover: clients not held back (the VIP goes at once)", "gate", g.String(), "err", err)
		return false
	}
	v := n.waitTurn(turnWait)
	n.log.Info("switchover: clients held back at the VIP", "gate", g.String(), "version", v, "took", time.Since(start).Round(time.Millisecond))
	return true
}

// waitTurn waits, up to limit, until two health checks of mfsmaster report the same version:
// mfsmaster answers each in a turn of its event loop, and at the end of a turn writes what it
// queued, so between two equal answers a whole turn went by without a change. It returns that
// version (the last one seen when limit ran out, logged).
func (n *Node) waitTurn(limit time.Duration) uint64 {
	var prev uint64
	v, err := n.pollVersion(limit, 10*time.Millisecond, func(v uint64) (bool, error) {
		same := v == prev
		prev = v
		return same, nil
	})
	if err != nil {
		n.log.Warn("switchover: mfsmaster's version did not settle; removing the VIP anyway", "version", v, "err", err, "waited", limit)
	}
	return v
}

// pollVersion asks mfsmaster its version (a health check) every `every` until settled holds
// for the version it reported, at most limit. It returns the last version reported (0 if
// none), and once limit ran out an error with the last failure (of the check or of settled).
func (n *Node) pollVersion(limit, every time.Duration, settled func(version uint64) (bool, error)) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var v uint64
	var last error
	for {
		got, err := Probe(ctx, nil, n.d.Master.ProbeAddr())
		if err == nil {
			v = got
			var ok bool
			if ok, err = settled(got); ok {
				return v, nil
			}
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("not settled in %v: %w", limit, errors.Join(ctx.Err(), last))
		case <-time.After(every):
		}
	}
}

// openGate opens the client gate, if there is one (logged on failure).
func (n *Node) openGate() {
	if g := n.d.Gate; g != nil {
		if err := g.Open(); err != nil {
			n.log.Error("client gate left closed: this host's clients are cut off from its VIP until it opens", "gate", g.String(), "err", err)
		}
	}
}

// addVIP claims the VIP, the client gate opened first: a gate a switchover left closed
// would cut the clients off the master this term starts.
func (n *Node) addVIP() error {
	n.openGate()
	return n.d.VIP.Add()
}
