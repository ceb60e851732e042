package failover_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/deploy/lab/ha"
	"github.com/mfsha/mfsha/failover"
)

// TestFailoverRefusesWrongVersion: a promotion whose `mfsmaster -a` serves another version
// than the metadata plus the handed-over lines make (here mb's MFSMASTER_BIN loses the last
// handed-over line before it starts the real mfsmaster: a master that did not apply every
// line) is abandoned: mb never serves as the master, and ma's node, whose mfsmaster was
// killed, promotes from the stream instead, with every acknowledged file.
func TestFailoverRefusesWrongVersion(t *testing.T) {
	c := newCluster(t, "v")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c.before(ctx, 3)

	flag, dropped := c.restartWithDroppingMaster(ctx, lab.HostMasterB)
	mbFrom := logSize(t, c.l, lab.HostMasterB)
	c.write(ctx, "before-kill")
	c.caughtUp(ctx, lab.HostMasterB)
	c.must("flag", os.WriteFile(flag, nil, 0o644))

	watch := watchMaster(c.lease, lab.HostMasterB)
	killed := time.Now()
	c.must("kill -9 mfsmaster on ma", c.l.KillProcs(ctx, lab.HostMasterA, "mfsmaster"))
	waitLog(ctx, t, c.l, lab.HostMasterB, mbFrom, "refusing to serve without them")
	c.waitMaster(ctx, lab.HostMasterA)
	if seen := watch(); seen != "" {
		t.Fatalf("mb served as the master: %s", seen)
	}
	t.Logf("mb's mfsmaster lost: %s", dropped())
	for _, line := range strings.Split(logSince(t, c.l, lab.HostMasterB, mbFrom), "\n") {
		if strings.Contains(line, "refusing to serve without them") {
			t.Logf("mb: %s", line)
			break
		}
	}
	// No mfsmaster serves mb's DATA_PATH (one folding the standby's copy may run).
	cfg := filepath.Join(c.l.ConfigDir(lab.HostMasterB), "mfsmaster.cfg")
	pids, err := c.l.Procs(lab.HostMasterB, "mfsmaster")
	c.must("mfsmaster processes on mb", err)
	for _, pid := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if args := strings.Split(string(cmdline), "\x00"); slices.Contains(args, cfg) {
			t.Errorf("mfsmaster %d runs on mb's master config after its promotion was abandoned: %q", pid, args)
		}
	}
	c.write(ctx, "on-ma")
	c.verify(ctx)
	c.stopWriter(ctx, fault{"kill -9 of mfsmaster on ma, mb's promotion refused", killed})
}

// restartWithDroppingMaster restarts host's node as a standby whose MFSMASTER_BIN, while the
// returned flag file exists, loses the last handed-over changelog line before a restore start
// (-a) of the real mfsmaster: a master that did not apply every line. It waits until the node
// materialized and is past START_GRACE. dropped reports what was dropped.
func (c *cluster) restartWithDroppingMaster(ctx context.Context, host string) (flag string, dropped func() string) {
	c.t.Helper()
	dir := c.t.TempDir()
	flag = filepath.Join(dir, "drop-a-line")
	wrapper := filepath.Join(dir, "mfsmaster")
	script := fmt.Sprintf(`#!/bin/sh
# The test's fault: a restore start (-a) loses the newest handed-over changelog line.
log=%[1]s
if [ -e %[2]s ] && [ -s %[3]s/changelog.1.mfs ]; then
	for a in "$@"; do
		if [ "$a" = -a ]; then
			echo "dropping: $(tail -n 1 %[3]s/changelog.1.mfs)" >>$log
			sed -i '$d' %[3]s/changelog.1.mfs
			break
		fi
	done
fi
exec %[4]s "$@"
`, filepath.Join(dir, "dropped.log"), flag, c.l.MasterDataDir(host), c.l.MooseFS().Path("mfsmaster"))
	c.must("wrapper", os.WriteFile(wrapper, []byte(script), 0o755))
	c.must("stop "+host+"'s node", c.l.Stop(ctx, host, ha.RoleNode))
	from := logSize(c.t, c.l, host)
	// No fold after the one a fresh standby makes at once: the promotion must hand lines over
	// (a fold racing the fault left none, and nothing to drop).
	extra := append(append([]string{}, nodeFlags...), "--mfsmaster", wrapper, "--fold-every", "1h", "--fold-replay", "1h")
	c.must(host+"'s node with the wrapper", ha.StartNode(ctx, c.l, ha.NodeSpec{Host: host, Bin: c.bin, Start: "standby", Cluster: c.name, NATS: c.urls, Extra: extra}))
	waitLog(ctx, c.t, c.l, host, from, "msg=materialized")
	time.Sleep(mustDuration(c.t, "1500ms")) // past START_GRACE (1 s): a promotion starts at once
	return flag, func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "dropped.log"))
		return strings.TrimSpace(string(b))
	}
}

// watchMaster polls the lease until the returned function is called, and reports a record
// naming host as the serving master, if one was seen.
func watchMaster(lease *failover.Lease, host string) func() string {
	stop, done := make(chan struct{}), make(chan string, 1)
	go func() {
		seen := ""
		for {
			select {
			case <-stop:
				done <- seen
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r, _, err := lease.Read(ctx)
			cancel()
			if err == nil && seen == "" && r.Holder == host && r.State == failover.StateMaster {
				seen = fmt.Sprintf("%+v", r)
			}
		}
	}()
	return func() string { close(stop); return <-done }
}
