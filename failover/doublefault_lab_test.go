package failover_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/shipper"
)

// TestFailoverRefusedPromotionPassesItsLinesOn: a double fault. ma's mfsmaster dies with lines
// that reached neither its own changelog nor the stream (as when MooseFS 4's data writer is
// killed with lines in its queue: its files lose their tail), which only mb's metalogger has;
// and mb's promotion is refused (its mfsmaster drops a line). ma's node then promotes from the
// stream. The files those lines acknowledged read back only if mb shipped the lines before its
// mfsmaster started (failover/shipfirst.go); before that, the refused promotion took them
// along (seen once in TestFailoverRefusesWrongVersion on 4.59.2).
func TestFailoverRefusedPromotionPassesItsLinesOn(t *testing.T) {
	c := newCluster(t, "y")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c.before(ctx, 3)
	flag, dropped := c.restartWithDroppingMaster(ctx, lab.HostMasterB)
	mbFrom := logSize(t, c.l, lab.HostMasterB)
	c.write(ctx, "before-the-fault")
	c.caughtUp(ctx, lab.HostMasterB)
	// ma's own metalogger must not keep the lines either: ma's node would merge them.
	c.must("stop ma's metalogger", c.l.Stop(ctx, lab.HostMasterA, lab.RoleMetalogger))
	c.must("flag", os.WriteFile(flag, nil, 0o644))

	// Within the lease's TTL (4 s): ma's node frozen (no shipping, no renewal), three files
	// written through its mfsmaster, which is then frozen too (no more acknowledgements).
	node := c.onlyProc(lab.HostMasterA, "mfsha")
	c.must("SIGSTOP ma's node", syscall.Kill(node, syscall.SIGSTOP))
	shipped := c.streamLast(ctx).LastVersion
	for i := range 3 {
		c.write(ctx, fmt.Sprintf("only-on-mb-%d", i))
	}
	masters, err := c.l.Procs(lab.HostMasterA, "mfsmaster")
	c.must("mfsmaster on ma", err)
	for _, pid := range masters {
		c.must("SIGSTOP mfsmaster", syscall.Kill(pid, syscall.SIGSTOP))
	}
	at := time.Now()
	time.Sleep(1200 * time.Millisecond) // mb's metalogger flushes each second
	onMB, _, ok, err := shipper.LastLine(c.l.MetaloggerDataDir(lab.HostMasterB), shipper.KindMetalogger)
	if err != nil || !ok || onMB <= shipped {
		t.Fatalf("mb's metalogger ends at %d (%v, %v); want past the stream's %d", onMB, ok, err, shipped)
	}
	c.must("kill -9 mfsmaster on ma", c.l.KillProcs(ctx, lab.HostMasterA, "mfsmaster"))
	cut := cutChangelog(t, c.l.MasterDataDir(lab.HostMasterA), shipped)
	t.Logf("stream at %d, mb's metalogger at %d; ma's changelog lost %d lines", shipped, onMB, cut)
	c.must("SIGCONT ma's node", syscall.Kill(node, syscall.SIGCONT))

	waitLog(ctx, t, c.l, lab.HostMasterB, mbFrom, "refusing to serve without them")
	t.Logf("mb's mfsmaster lost: %s", dropped())
	c.waitMaster(ctx, lab.HostMasterA)
	c.write(ctx, "on-ma")
	c.verify(ctx) // only-on-mb-* included
	c.stopWriter(ctx, fault{"ma frozen and its files cut, mb's promotion refused", at})
}

// onlyProc returns the pid of the one process named comm on host.
func (c *cluster) onlyProc(host, comm string) int {
	c.t.Helper()
	pids, err := c.l.Procs(host, comm)
	c.must(comm+" on "+host, err)
	if len(pids) != 1 {
		c.t.Fatalf("%s processes on %s: %v; want one", comm, host, pids)
	}
	return pids[0]
}

// cutChangelog removes the lines after version keep from the master's changelog.0.mfs (the
// older files must end before it) and returns how many it removed.
func cutChangelog(t *testing.T, dir string, keep uint64) int {
	t.Helper()
	if last, _, ok, err := shipper.LastLine(dir, shipper.KindMaster); err != nil || !ok {
		t.Fatalf("changelog of %s: %v, %v", dir, ok, err)
	} else if last <= keep {
		t.Fatalf("changelog of %s ends at %d: nothing after %d to cut", dir, last, keep)
	}
	path := filepath.Join(dir, "changelog.0.mfs")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kept bytes.Buffer
	cut := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l, err := changelog.Parse(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if l.Version > keep {
			cut++
			continue
		}
		kept.Write(sc.Bytes())
		kept.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, kept.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return cut
}
