package failover

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/mfstest"
)

// TestAcknowledgedChangeSurvivesAKillOfEveryMasterProcess: with CHANGELOG_SAVE_MODE = 1, what
// the node asks for (a warning otherwise) and what the lab runs, a change mfsmaster
// acknowledged is in its changelog.0.mfs after a kill -9 of every mfsmaster process (as
// `pkill -9 mfsmaster` or a cgroup kill does), with no metalogger connected to have it
// either: the first seconds after a master starts, before they reconnect.
//
// mfsmaster forks a background writer process at start. Here it is frozen (SIGSTOP) for the
// change, which stands for a writer that has not run yet: with MooseFS's default mode 0 the
// line waits for it in their socket pair, the client is answered anyway, and the kill takes
// the change back (seen in TestFailoverBackToHAAfterRestore under CI load: an acknowledged
// file read back empty; mode 0 in the lab fails this test). With 1, mfsmaster writes the line
// itself, before it queues the answer.
func TestAcknowledgedChangeSurvivesAKillOfEveryMasterProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, mnt := mfstest.SmallCluster(ctx, t, fmt.Sprintf("sm%d", os.Getpid()%100000))
	cfg, err := l.MasterConfig(lab.HostMasterA)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := readMasterConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if mc.changelogSaveMode != 1 {
		t.Fatalf("the lab's %s has CHANGELOG_SAVE_MODE = %d; want 1, what a failover node asks for", cfg, mc.changelogSaveMode)
	}
	// Once the master serves a mount, its writer process is up.
	if err := os.WriteFile(filepath.Join(mnt, "before"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	writer := backgroundWriter(t, l)
	if err := syscall.Kill(writer, syscall.SIGSTOP); err != nil {
		t.Fatalf("freeze mfsmaster's background writer (pid %d): %v", writer, err)
	}
	defer syscall.Kill(writer, syscall.SIGKILL)
	const name = "acknowledged"
	if err := os.WriteFile(filepath.Join(mnt, name), []byte("the change\n"), 0o644); err != nil {
		t.Fatalf("write %s through the mount: %v", name, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(mnt, name), &st); err != nil {
		t.Fatal(err)
	}
	if err := l.KillProcs(ctx, lab.HostMasterA, "mfsmaster"); err != nil {
		t.Fatal(err)
	}
	changelog := filepath.Join(l.MasterDataDir(lab.HostMasterA), "changelog.0.mfs")
	b, err := os.ReadFile(changelog)
	if err != nil {
		t.Fatal(err)
	}
	// Its CREATE, and its length (11 bytes: close returned after WRITE_CHUNK_END).
	for _, want := range []string{"|CREATE(1," + name + ",", fmt.Sprintf("|LENGTH(%d,11", st.Ino)} {
		if !bytes.Contains(b, []byte(want)) {
			t.Fatalf("after kill -9 of every mfsmaster process, %s lacks %q of the acknowledged file:\n%s", changelog, want, lastLines(b, 12))
		}
	}
}

// backgroundWriter returns the pid of the mfsmaster on ma whose parent is another mfsmaster:
// the data writer it forks at start (bgsaver.c).
func backgroundWriter(t *testing.T, l *lab.Lab) int {
	t.Helper()
	pids, err := l.Procs(lab.HostMasterA, "mfsmaster")
	if err != nil {
		t.Fatal(err)
	}
	is := map[int]bool{}
	for _, p := range pids {
		is[p] = true
	}
	for _, p := range pids {
		if ppid, err := lab.ParentPid(p); err == nil && is[ppid] {
			return p
		}
	}
	t.Fatalf("no mfsmaster process on ma whose parent is mfsmaster (pids %v): no background writer", pids)
	return 0
}

// lastLines is the last n lines of b.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
