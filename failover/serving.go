package failover

import (
	"fmt"
	"time"
)

// Names of the node's loops in its liveness.Monitor.
const (
	loopMaster  = "failover master"  // serve: health checks, lease loss, switchover
	loopStandby = "failover standby" // watch: the lease, while standing by
)

// Serving tells whether this node's mfsmaster serves under a valid lease, and why not: the
// answer of /master, for load balancers and fencing scripts. It is true only while
//   - the node is in its master term (promotion finished, not yet fencing),
//   - its last lease renewal is within RenewEvery + 2*RenewTimeout: past that the node fences
//     itself (see Config), so the lease may soon be another's,
//   - mfsmaster answered a health check within CheckEvery*CheckFailures + CheckTimeout.
//
// It never waits on NATS. Safe for concurrent use.
func (n *Node) Serving() (bool, string) {
	t := n.cur.Load()
	if t == nil {
		return false, fmt.Sprintf("this node is %s", n.Role())
	}
	select {
	case <-t.k.lost:
		return false, "the lease was lost: fencing"
	case <-t.k.stop:
		return false, "the lease is being released"
	default:
	}
	now := time.Now()
	renewed := time.Unix(0, t.k.okAt.Load())
	onPromises := false
	if limit := n.cfg.RenewEvery + 2*n.cfg.RenewTimeout; now.Sub(renewed) > limit {
		if c, ok := t.k.covered(); !ok || !now.Before(c) {
			return false, fmt.Sprintf("the lease was last renewed %v ago (limit %v)", now.Sub(renewed).Round(time.Millisecond), limit)
		}
		onPromises = true
	}
	checked := n.checkedAt.Load()
	if checked == 0 {
		return false, "mfsmaster has not answered a health check yet in this term"
	}
	if limit := n.cfg.CheckEvery*time.Duration(n.cfg.CheckFailures) + n.cfg.CheckTimeout; now.Sub(time.Unix(0, checked)) > limit {
		return false, fmt.Sprintf("mfsmaster last answered a health check %v ago (limit %v)", now.Sub(time.Unix(0, checked)).Round(time.Millisecond), limit)
	}
	if onPromises {
		return true, fmt.Sprintf("mfsmaster serves on failsafe promises (NATS takes no renewal since %v), epoch %d", now.Sub(renewed).Round(time.Millisecond), t.k.epoch())
	}
	return true, fmt.Sprintf("mfsmaster serves under the lease, epoch %d", t.k.epoch())
}
