package failover_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/deploy/lab/ha"
	"github.com/mfsha/mfsha/internal/natsconn"
)

// TestFailoverBackToHAAfterRestore: the README's command path from a point-in-time restore
// back to a failover-protected master. Stop both nodes (ma hands over), `mfsha restore --to T`
// into mb's DATA_PATH, start mb's node as master (the restore's mark: it takes the free lease
// with that history, on a new timeline), start ma's node as a standby (it follows the new
// timeline); once ma has materialized that timeline, kill -9 of mfsmaster on mb fails over
// to ma under the continuous writer.
func TestFailoverBackToHAAfterRestore(t *testing.T) {
	c := newCluster(t, "r")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	const ma, mb = lab.HostMasterA, lab.HostMasterB
	c.before(ctx, 3)
	c.stopWriter(ctx) // its files after the target are gone by design: count them before
	time.Sleep(1100 * time.Millisecond)
	target := time.Now().Truncate(time.Second).Add(-time.Second)
	time.Sleep(1100 * time.Millisecond)
	c.write(ctx, "after-target")
	c.caughtUp(ctx, mb)
	oldTimeline := c.streamLast(ctx).Timeline

	c.must("stop mb's node", c.l.Stop(ctx, mb, ha.RoleNode))
	c.must("stop ma's node (it hands over)", c.l.Stop(ctx, ma, ha.RoleNode))
	_, trusted, err := c.l.SigningKeys()
	c.must("keys", err)
	restored := filepath.Join(c.l.HostDir(mb), "restored")
	out, err := c.l.Exec(ctx, mb, append([]string{c.bin, "restore", "--nats", strings.Join(c.urls, ","), "--cluster", c.name,
		"--trusted-keys", trusted, "--to", target.UTC().Format(time.RFC3339), "--out", restored,
		"--mfsmaster", c.l.MooseFS().Path("mfsmaster")}, c.l.NATSFlags(natsconn.RoleReader)...)...)
	c.must("mfsha restore:\n"+string(out), err)
	c.must("clear mb's DATA_PATH", os.RemoveAll(c.l.MasterDataDir(mb)))
	c.must("the restore into mb's DATA_PATH", os.Rename(restored, c.l.MasterDataDir(mb)))
	c.must("mb's node as master", c.startNode(ctx, mb, "ship"))
	epoch := c.waitMaster(ctx, mb)
	// Before any client could write to it, the stream is on a new timeline: a standby holding
	// the old one (the state restored away from) is not current and cannot be promoted.
	if tl := c.streamLast(ctx).Timeline; tl <= oldTimeline {
		t.Fatalf("mb serves, but the stream's newest batch is on timeline %d; want a new one after %d", tl, oldTimeline)
	}
	if _, err := os.Stat(filepath.Join(c.l.MasterDataDir(mb), "mfsha-restored.json")); err == nil {
		t.Error("the restore's mark is still in mb's DATA_PATH after its master served")
	}
	c.must("ma's node as standby", c.startNode(ctx, ma, "standby"))
	c.writer, err = ha.StartWriter(ctx, c.l, lab.HostClient, "writer-after-restore")
	c.must("continuous writer", err)
	if _, err := c.l.ReadFile(ctx, lab.HostClient, "after-target"); err == nil {
		t.Fatal("after-target, written after the restore's target, is still there")
	}
	delete(c.files, "after-target")
	c.verify(ctx) // before-0..2
	c.write(ctx, "on-the-new-timeline")

	// Only once ma has materialized the new timeline (its node status names it, with every
	// line) is it promotable. Killed before, mb's master is not replaced by ma: mb's own lease
	// lapses and mb promotes itself again, which is right but not what this test checks (seen
	// under load: ma's first materialization of the new timeline took 10.5 s). That a standby
	// on the old timeline is never promoted is checked when mb serves (the stream's new
	// timeline before any client, above) and below (after-target does not come back).
	resync := time.Now()
	c.caughtUp(ctx, ma)
	t.Logf("ma materialized the new timeline and caught up %v after the last write", time.Since(resync).Round(time.Millisecond))
	// ma must serve the restored history (never its old state), with every file written since.
	killed := time.Now()
	c.must("kill -9 mfsmaster on mb", c.l.KillProcs(ctx, mb, "mfsmaster"))
	if e := c.waitMaster(ctx, ma); e <= epoch {
		t.Fatalf("epoch %d after the failover, was %d", e, epoch)
	}
	if _, err := c.l.ReadFile(ctx, lab.HostClient, "after-target"); err == nil {
		t.Fatal("after-target is back after the failover: ma served the state restored away from")
	}
	c.verify(ctx)
	c.stopWriter(ctx, fault{"kill -9 of mfsmaster on mb, right after serving the restore", killed})
	c.caughtUp(ctx, mb)
}
