package failover_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/deploy/lab/ha"
	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/stream"
)

var natsHosts = []string{lab.HostNATS1, lab.HostNATS2, lab.HostNATS3}

// natsJS connects to the lab's NATS from cl as the admin; call the returned function when done.
func (c *cluster) natsJS() (jetstream.JetStream, func()) {
	c.t.Helper()
	nc, err := c.l.ConnectNATS(lab.HostClient, c.urls...)
	c.must("connect", err)
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		c.must("jetstream", err)
	}
	return js, nc.Close
}

// leaseLeader is the NATS host leading the lease's stream.
func (c *cluster) leaseLeader(ctx context.Context, js jetstream.JetStream) string {
	c.t.Helper()
	leader, err := streamLeader(ctx, js, c.lease.StreamName())
	c.must("the lease stream's leader", err)
	if !slices.Contains(natsHosts, leader) {
		c.t.Fatalf("the lease stream's leader is %q; want one of the NATS hosts", leader)
	}
	return leader
}

// led names the failover streams host leads: the lease's, the members', the log's.
func (c *cluster) led(ctx context.Context, js jetstream.JetStream, host string) []string {
	var out []string
	for _, s := range []string{c.lease.StreamName(), "KV_" + stream.MembersBucket(c.name), stream.StreamName(c.name)} {
		if l, err := streamLeader(ctx, js, s); err == nil && l == host {
			out = append(out, s)
		}
	}
	return out
}

// killNATS kills -9 the NATS node on host (what says which it is), the master on ma healthy
// and its node's failsafe armed, writes a file right after, and waits past the lease's TTL and
// a Raft election. Then ma must still hold the lease as a serving master with the same
// mfsmaster process (pids), its node must never have fenced, and the VIP must never have been
// held by two hosts, and the lease's epoch must still be epoch: a record that expired during
// the election is taken again by create, at the same epoch (the term goes on). It logs what
// ma's node went through since the kill, and returns the fault (for stopWriter) and the epoch.
func (c *cluster) killNATS(ctx context.Context, host, what string, pids []int, epoch uint64) (fault, uint64) {
	c.t.Helper()
	logBefore, _ := os.ReadFile(ha.NodeLog(c.l, lab.HostMasterA))
	killed := time.Now()
	c.must("kill -9 NATS on "+host, c.l.KillProcess(ctx, host, lab.RoleNATS))
	f := fault{"kill -9 of NATS on " + host + " (" + what + ")", killed}
	c.write(ctx, "after-nats-kill-"+host)
	c.t.Logf("a write issued right after kill -9 of NATS on %s (%s) completed %v later", host, what, time.Since(killed).Round(10*time.Millisecond))
	// Past the lease's TTL and a Raft election.
	time.Sleep(15 * time.Second)
	var rec failover.LeaseRecord
	for {
		r, rev, err := c.lease.Read(ctx)
		if err == nil && rev != 0 && r.State == failover.StateMaster {
			rec = r
			break
		}
		if ctx.Err() != nil {
			c.t.Fatalf("no serving master after kill -9 of NATS on %s: %+v, %v", host, r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rec.Holder != lab.HostMasterA {
		c.t.Fatalf("after kill -9 of NATS on %s the lease is %s's at epoch %d: a failover of a healthy master", host, rec.Holder, rec.Epoch)
	}
	if rec.Epoch != epoch {
		c.t.Fatalf("after kill -9 of NATS on %s ma holds the lease at epoch %d, was %d: a new term where none began", host, rec.Epoch, epoch)
	}
	if now, err := c.l.Procs(lab.HostMasterA, "mfsmaster"); err != nil || !slices.Equal(now, pids) {
		c.t.Fatalf("mfsmaster on ma: pids %v (%v), were %v: the master was restarted", now, err, pids)
	}
	b, _ := os.ReadFile(ha.NodeLog(c.l, lab.HostMasterA))
	if strings.Contains(string(b), "fenced") {
		c.t.Fatalf("ma's node fenced itself after kill -9 of NATS on %s", host)
	}
	if err := c.vip.Conflict(); err != nil {
		c.t.Fatalf("after kill -9 of NATS on %s: %v", host, err)
	}
	if owner, err := c.l.VIPOwner(); err != nil || owner != lab.HostMasterA {
		c.t.Fatalf("after kill -9 of NATS on %s the VIP is %q's (%v); want ma's", host, owner, err)
	}
	since := string(b[min(len(logBefore), len(b)):])
	c.t.Logf("after kill -9 of NATS on %s (%s): same holder ma, same mfsmaster, same epoch %d; ma's renewals failed: %v; served on failsafe promises: %v; lease taken again on promises: %v",
		host, what, rec.Epoch, strings.Contains(since, "lease renewal failed"), strings.Contains(since, "on_promises=true"),
		strings.Contains(since, "taken again on the failsafe promises"))
	return f, rec.Epoch
}

// restartNATS starts the killed NATS node on host again and waits until every stream is
// current on all three nodes: the cluster healthy, ready for the next loss.
func (c *cluster) restartNATS(ctx context.Context, host string) {
	c.t.Helper()
	began := time.Now()
	c.must("restart NATS on "+host, c.l.RestartNATS(ctx, c.bin, host, natsHosts...))
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c.must("NATS healthy after the restart of "+host, c.l.WaitNATSCurrent(wctx, lab.HostClient, c.urls...))
	c.t.Logf("NATS on %s restarted; every stream current on the three nodes %v later", host, time.Since(began).Round(10*time.Millisecond))
}

// killOrder is the order in which TestFailoverEachNATSNodeKilled kills the NATS nodes: the one
// leading the lease's stream first, then the others.
func killOrder(leader string) []string {
	return append([]string{leader}, slices.DeleteFunc(slices.Clone(natsHosts), func(h string) bool { return h == leader })...)
}

// TestFailoverEachNATSNodeKilled: kill -9 of each NATS node in turn (issue 11), the master
// healthy, under the continuous writer; the first killed leads the lease's stream, and each
// comes back and catches up before the next. After each kill the same node serves with the
// same mfsmaster process, unfenced, the VIP never held twice; at the end every acknowledged
// file reads back, and the lease's epoch never changed (see killNATS). The writer's longest
// gap after each kill is logged, not asserted (timings are never test assertions).
func TestFailoverEachNATSNodeKilled(t *testing.T) {
	c := newCluster(t, "e")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	epoch := c.before(ctx, 3)
	c.waitFailsafeArmed(ctx, lab.HostMasterA)
	pids, err := c.l.Procs(lab.HostMasterA, "mfsmaster")
	c.must("mfsmaster on ma", err)
	js, closeJS := c.natsJS()
	defer closeJS()
	var faults []fault
	var epochs []string
	for i, host := range killOrder(c.leaseLeader(ctx, js)) {
		what := "leads " + strings.Join(c.led(ctx, js, host), ", ")
		if what == "leads " {
			what = "leads no failover stream"
		}
		before := epoch
		var f fault
		f, epoch = c.killNATS(ctx, host, fmt.Sprintf("kill %d of 3, %s", i+1, what), pids, epoch)
		faults = append(faults, f)
		epochs = append(epochs, fmt.Sprintf("%s: %d -> %d", host, before, epoch))
		c.restartNATS(ctx, host)
	}
	t.Logf("MooseFS %s: lease epochs per kill: %s", c.l.MooseFS(), strings.Join(epochs, "; "))
	c.write(ctx, "after-settling")
	c.verify(ctx)
	c.stopWriter(ctx, faults...)
}
