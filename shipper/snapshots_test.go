package shipper

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/buildinfo"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
)

// TestSnapshotsAndRetention: each snapshot renamed into place is uploaded once its lines are
// shipped; retention keeps the window plus its base and purges only lines below the base.
func TestSnapshotsAndRetention(t *testing.T) {
	ctx := context.Background()
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 2500))
	cfg, store := snapshotConfig(t, n, dir)
	cfg.MaxBatchBytes, cfg.Retention = 16<<10, 72*time.Hour
	r := startConfigured(t, n, cfg)
	waitShipped(t, r, 1, 2500)

	now := time.Now()
	for _, s := range []struct {
		inodes int
		age    time.Duration
	}{{100, 100 * time.Hour}, {500, 80 * time.Hour}, {1000, time.Hour}, {2000, 0}} {
		// As mfsmaster does: write a temporary file, then rename it into place.
		tmp := filepath.Join(dir, "metadata.mfs.back.tmp")
		version := putMetadata(t, tmp, s.inodes)
		if err := os.Chtimes(tmp, now.Add(-s.age), now.Add(-s.age)); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "metadata.mfs.back")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "snapshot of version "+stream.SnapshotName(1, version), func() bool {
			_, err := store.Get(ctx, stream.SnapshotName(1, version))
			return err == nil
		})
	}
	waitFor(t, "retention to drop the oldest snapshot", func() bool {
		l, _ := store.List(ctx)
		return len(l) == 3 && l[0].Version == 502
	})
	st, _ := n.js.Stream(ctx, stream.StreamName(testCluster))
	si, _ := st.Info(ctx)
	first, err := st.GetMsg(ctx, si.State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := stream.ParseBatchHeader(first.Header)
	if fi.FirstVersion <= 1 || fi.FirstVersion > 502 || fi.LastVersion < 502 {
		t.Fatalf("after retention the stream starts with versions %d..%d; want the batch holding 502 (the oldest kept snapshot)", fi.FirstVersion, fi.LastVersion)
	}
}

// TestSnapshotWaitsForItsLines: a snapshot is uploaded once the line of its version is
// shipped, not before.
func TestSnapshotWaitsForItsLines(t *testing.T) {
	ctx := context.Background()
	n := startNATS(t)
	dir := masterDir(t)
	version := putMetadata(t, filepath.Join(dir, "metadata.mfs.back"), 300) // version 302
	writeFile(t, logPath(dir, 0), lines(1, 200))
	cfg, store := snapshotConfig(t, n, dir)
	r := startConfigured(t, n, cfg)
	waitShipped(t, r, 1, 200)
	time.Sleep(200 * time.Millisecond) // several snapshot polls
	if l, _ := store.List(ctx); len(l) != 0 {
		t.Fatalf("uploaded %+v before lines up to %d were shipped", l, version-1)
	}
	appendFile(t, logPath(dir, 0), lines(201, 301))
	waitShipped(t, r, 1, 301)
	time.Sleep(200 * time.Millisecond) // every line below it is shipped, but not line 302 itself
	if l, _ := store.List(ctx); len(l) != 0 {
		t.Fatalf("uploaded %+v before line %d was shipped: its timeline is not known yet", l, version)
	}
	appendFile(t, logPath(dir, 0), lines(302, 302))
	waitFor(t, "the snapshot once its line is shipped", func() bool {
		l, _ := store.List(ctx)
		return len(l) == 1 && l[0].Version == version
	})
}

// snapshotConfig is the config of a shipper of the master directory dir that uploads its
// snapshots to a new store, polling often.
func snapshotConfig(t *testing.T, n *testNATS, dir string) (Config, *snapshot.Store) {
	t.Helper()
	store, err := snapshot.Open(context.Background(), n.js, testCluster, 1)
	if err != nil {
		t.Fatal(err)
	}
	store = store.WithSigner(n.keys.Signer).WithVerifier(n.keys.Verifier)
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Kind, cfg.Cluster, cfg.Snapshots = dir, KindMaster, testCluster, store
	cfg.Poll, cfg.SnapshotPoll = 50*time.Millisecond, 50*time.Millisecond
	return cfg, store
}

// putMetadata writes, at path, a real metadata file of inodes files made by mfsmaster, and
// returns its version (inodes + 2).
func putMetadata(t *testing.T, path string, inodes int) uint64 {
	t.Helper()
	src, version := mfstest.MakeMetadata(t, t.TempDir(), 99, inodes)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
	return version
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestCleanStopHoleIsBridged: a real mfsmaster skips a version across a clean stop (seen: the
// last line 28, metadata.mfs of version 30, the restarted master goes on at 30). The metadata
// file bridges the hole: the shipper goes on, marks the batch, and uploads that snapshot.
func TestCleanStopHoleIsBridged(t *testing.T) {
	ctx := context.Background()
	n := startNATS(t)
	dir := masterDir(t)
	if version := putMetadata(t, filepath.Join(dir, "metadata.mfs"), 28); version != 30 {
		t.Fatalf("made version %d, want 30", version)
	}
	writeFile(t, logPath(dir, 0), lines(1, 28)+lines(30, 40))
	cfg, store := snapshotConfig(t, n, dir)
	cfg.MaxBatchBytes = 16 << 10
	r := startConfigured(t, n, cfg)
	waitShipped(t, r, 1, 40)
	checkStream(t, n, map[uint64]string{1: lines(1, 28) + lines(30, 40)})
	st, _ := n.js.Stream(ctx, stream.StreamName(testCluster))
	m, err := st.GetLastMsgForSubject(ctx, stream.Subject(testCluster, 1))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := stream.ParseBatchHeader(m.Header)
	if info.FirstVersion != 30 || info.BridgedFrom != 29 {
		t.Fatalf("batch after the hole: %+v; want first version 30, bridged from 29", info)
	}
	if want := buildinfo.Writer(); info.Writer != want || m.Header.Get(stream.HdrWriter) != want {
		t.Fatalf("batch written by %q (header %q); want %q", info.Writer, m.Header.Get(stream.HdrWriter), want)
	}
	waitFor(t, "the bridging snapshot", func() bool {
		_, err := store.Get(ctx, stream.SnapshotName(1, 30))
		return err == nil
	})
	// Without the metadata file the same hole is a gap.
	if err := os.Remove(filepath.Join(dir, "metadata.mfs")); err != nil {
		t.Fatal(err)
	}
	appendFile(t, logPath(dir, 0), lines(42, 43))
	if err := r.waitErr(t); !errors.Is(err, ErrGap) {
		t.Fatalf("got %v, want ErrGap for the unbridged hole at 41", err)
	}
}

// TestForkedTimelineGetsItsBaseSnapshot: a master started from metadata restored to version
// 500 has that file in its directory from the start, while the stream is still on timeline 1;
// the snapshot is stored as timeline 2's, the base a restore of timeline 2 needs.
func TestForkedTimelineGetsItsBaseSnapshot(t *testing.T) {
	ctx := context.Background()
	n := startNATS(t)
	old := masterDir(t)
	writeFile(t, logPath(old, 0), lines(1, 1000))
	r := startShipper(t, n, old, KindMaster)
	waitShipped(t, r, 1, 1000)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	dir := masterDir(t)
	version := putMetadata(t, filepath.Join(dir, "metadata.mfs.back"), 498)
	cfg, store := snapshotConfig(t, n, dir)
	r = startConfigured(t, n, cfg)
	time.Sleep(200 * time.Millisecond)
	writeFile(t, logPath(dir, 0), linesAt(version, version+10, 1800000000)) // its first changes
	waitShipped(t, r, 2, version+10)
	waitFor(t, "the base snapshot of timeline 2", func() bool {
		_, err := store.Get(ctx, stream.SnapshotName(2, version))
		return err == nil
	})
	if _, err := store.Get(ctx, stream.SnapshotName(1, version)); err == nil {
		t.Fatal("the new master's base was also stored as timeline 1's")
	}
}
