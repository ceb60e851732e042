package failover_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/deploy/lab/ha"
	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/mfstest"
)

// TestPromotionRidesOutANATSElection: a promotion whose mfsmaster takes long to load (a wrapper
// waits 12 s before the real one when a marker file exists, as a 10M-inode load takes 14-24 s)
// keeps its lease through the Raft election that follows a kill -9 of the NATS node leading the
// lease's stream, on failsafe promises: mb serves at the epoch it took, with the one mfsmaster
// it started, and never abandons its promotion. Before failsafeWhileStarting the keeper marked
// the lease lost 2.5 s into the election and the promotion was abandoned: a failover lost to
// one NATS node (seen in the 10M bench).
func TestPromotionRidesOutANATSElection(t *testing.T) {
	real := mfstest.Mfsmaster(t).Path
	dir := t.TempDir()
	slow := filepath.Join(dir, "slow")
	wrapper := filepath.Join(dir, "mfsmaster")
	// Only a start to serve (mfsha runs `mfsmaster -f -c CFG -a`) waits: a fold (-c CFG -a
	// restore) and the release check (-v) do not.
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = -f ] && [ -e %s ]; then sleep 12; fi\nexec %s \"$@\"\n", slow, real)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, "n", "--mfsmaster", wrapper)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c.before(ctx, 2)
	c.waitFailsafeArmed(ctx, lab.HostMasterA)
	c.must("slow starts from now on", os.WriteFile(slow, nil, 0o644))
	js, closeJS := c.natsJS()
	defer closeJS()
	leader := c.leaseLeader(ctx, js)
	logBefore, _ := os.ReadFile(ha.NodeLog(c.l, lab.HostMasterB))

	killed := time.Now()
	c.must("kill -9 mfsmaster on ma", c.l.KillProcs(ctx, lab.HostMasterA, "mfsmaster"))
	faults := []fault{{"kill -9 of mfsmaster on ma", killed}}
	// mb takes the lease and arms failsafe while its mfsmaster "loads".
	since := func() string {
		b, _ := os.ReadFile(ha.NodeLog(c.l, lab.HostMasterB))
		return string(b[min(len(logBefore), len(b)):])
	}
	for !strings.Contains(since(), `msg="lease taken"`) {
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("mb did not take the lease within 10 s of the kill; its log since:\n%s", since())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Armed about a second later; the election comes then, armed or not (the outcome below
	// is what counts).
	for taken := time.Now(); !strings.Contains(since(), "failsafe armed") && time.Since(taken) < 5*time.Second; {
		time.Sleep(50 * time.Millisecond)
	}
	rec, _, err := c.lease.Read(ctx)
	c.must("read the lease", err)
	if rec.Holder != lab.HostMasterB || rec.State != failover.StatePromoting {
		t.Fatalf("with mb's mfsmaster loading the lease is %+v; want mb's, promoting", rec)
	}
	c.must("kill -9 NATS on "+leader, c.l.KillProcess(ctx, leader, lab.RoleNATS))
	faults = append(faults, fault{"kill -9 of NATS on " + leader + " (leads the lease) during mb's promotion", time.Now()})
	t.Logf("%v after the kill of ma's mfsmaster (mb armed failsafe: %v), NATS on %s killed", time.Since(killed).Round(10*time.Millisecond), strings.Contains(since(), "failsafe armed"), leader)

	epoch := c.waitMaster(ctx, lab.HostMasterB)
	log := since()
	if epoch != rec.Epoch {
		t.Fatalf("mb serves at epoch %d, took the lease at %d: its promotion was abandoned and a new term began; mb's log:\n%s", epoch, rec.Epoch, log)
	}
	if strings.Contains(log, "promotion failed") || strings.Count(log, `msg="mfsmaster started"`) != 1 {
		t.Fatalf("mb's promotion failed or started mfsmaster more than once; its log:\n%s", log)
	}
	t.Logf("mb served at the epoch it took (%d), %v after the kill; renewals failed meanwhile: %v; lease taken again on promises: %v",
		epoch, time.Since(killed).Round(10*time.Millisecond), strings.Contains(log, "lease renewal failed"), strings.Contains(log, "taken again on the failsafe promises"))
	c.restartNATS(ctx, leader)
	c.write(ctx, "after-the-election")
	c.verify(ctx)
	c.stopWriter(ctx, faults...)
}
