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
	"github.com/mfsha/mfsha/failover"
)

// TestFailoverBootRules: with the lease free (both nodes stopped cleanly, as for a restart of
// the whole cluster), a standby that has just started waits out START_GRACE, so that the
// `ship` node starting a moment later with files that continue the stream takes the lease
// with its own files; and a `ship` node whose files do not continue the stream (an old copy
// of the master's files) refuses to serve them, stands by, and takes the free lease only
// through a promotion from the stream: nothing acknowledged is lost either way.
func TestFailoverBootRules(t *testing.T) {
	c := newCluster(t, "b")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c.before(ctx, 3)
	// An old copy of ma's master files: behind the stream once more is written.
	old := t.TempDir()
	copyMasterFiles(t, c.l.MasterDataDir(lab.HostMasterA), old)
	c.write(ctx, "after-the-copy")
	c.caughtUp(ctx, lab.HostMasterB)

	stopBoth := func() {
		t.Helper()
		c.must("stop mb's node", c.l.Stop(ctx, lab.HostMasterB, ha.RoleNode))
		c.must("stop ma's node", c.l.Stop(ctx, lab.HostMasterA, ha.RoleNode))
		rec, rev, err := c.lease.Read(ctx)
		if err != nil || rev == 0 || rec.State != failover.StateReleased {
			t.Fatalf("after both nodes stopped cleanly the lease is %+v (revision %d, %v); want released", rec, rev, err)
		}
	}
	var faults []fault

	// START_GRACE: mb starts first and sees the lease free with its metadata materialized,
	// and waits; ma starts within the grace and takes the lease with its own files.
	stopBoth()
	faults = append(faults, fault{"both nodes stopped, mb then ma started", time.Now()})
	mbFrom := logSize(t, c.l, lab.HostMasterB)
	graceFlags := append(append([]string{}, nodeFlags...), "--start-grace", "20s")
	c.must("mb's node (START_GRACE 20s)", ha.StartNode(ctx, c.l, ha.NodeSpec{Host: lab.HostMasterB, Bin: c.bin, Start: "standby", Cluster: c.name, NATS: c.urls, Extra: graceFlags}))
	waitLog(ctx, t, c.l, lab.HostMasterB, mbFrom, "waiting out START_GRACE")
	maFrom := logSize(t, c.l, lab.HostMasterA)
	c.must("ma's node (ship)", c.startNode(ctx, lab.HostMasterA, "ship"))
	c.waitMaster(ctx, lab.HostMasterA)
	if !strings.Contains(logSince(t, c.l, lab.HostMasterA, maFrom), "lease taken with the local files") {
		t.Fatalf("ma became the master, but not by its boot with its own files")
	}
	if s := logSince(t, c.l, lab.HostMasterB, mbFrom); strings.Contains(s, "the lease is free: promoting") {
		t.Fatalf("mb, started first, tried to take the free lease within its START_GRACE")
	}
	c.write(ctx, "on-ma-after-boot")
	c.verify(ctx)

	// A ship node whose files are behind the stream: mb, with the old copy as its master files.
	stopBoth()
	faults = append(faults, fault{"both nodes stopped, mb started as ship on old files", time.Now()})
	copyMasterFiles(t, old, c.l.MasterDataDir(lab.HostMasterB))
	mbFrom = logSize(t, c.l, lab.HostMasterB)
	c.must("mb's node (ship, old files)", c.startNode(ctx, lab.HostMasterB, "ship"))
	c.waitMaster(ctx, lab.HostMasterB)
	// The lease names mb a moment before its node logs the promotion: wait for the line.
	waitLog(ctx, t, c.l, lab.HostMasterB, mbFrom, "promoted: this node is the master")
	s := logSince(t, c.l, lab.HostMasterB, mbFrom)
	for _, want := range []string{"boot: the local master's files do not continue the stream; standing by", "the lease is free: promoting", "promoted: this node is the master"} {
		if !strings.Contains(s, want) {
			t.Errorf("mb's log lacks %q", want)
		}
	}
	if strings.Contains(s, "lease taken with the local files") {
		t.Errorf("mb took the lease with files that do not continue the stream")
	}
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, "do not continue the stream") {
			t.Logf("mb's refusal: %s", line)
		}
	}
	c.write(ctx, "on-mb")
	c.verify(ctx) // after-the-copy and on-ma-after-boot included: the old files were not served
	c.stopWriter(ctx, faults...)
}

// copyMasterFiles copies the metadata and changelog files of a master's DATA_PATH.
func copyMasterFiles(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if !e.Type().IsRegular() || !(strings.HasPrefix(e.Name(), "metadata") || strings.HasPrefix(e.Name(), "changelog")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no master files in %s", from)
	}
}

func logSize(t *testing.T, l *lab.Lab, host string) int {
	t.Helper()
	b, err := os.ReadFile(ha.NodeLog(l, host))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(b)
}

// logSince is the node's log on host from byte offset from on.
func logSince(t *testing.T, l *lab.Lab, host string, from int) string {
	t.Helper()
	b, err := os.ReadFile(ha.NodeLog(l, host))
	if err != nil {
		t.Fatal(err)
	}
	if from > len(b) {
		from = 0
	}
	return string(b[from:])
}

// waitLog waits until the node's log on host, from offset from, contains want.
func waitLog(ctx context.Context, t *testing.T, l *lab.Lab, host string, from int, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(logSince(t, l, host, from), want) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s's node never logged %q", host, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
