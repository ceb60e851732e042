package restorer

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/jstest"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/shipper"
)

// TestRetentionKeepsTheWindowRestorable runs retention through real shippers on two timelines
// and, after every purge, checks that every moment of the 72 h window on every timeline can
// be restored: a plan exists and every line it needs is in the stream, and a real fold of the
// window's first moment gives the right metadata.
//
// Found by trying it: lines 1-269 inside the window were purged once the first real snapshot
// existed (the empty starting state is never uploaded). Found by reading: the whole stream was
// purged below the oldest kept snapshot by time, so a forked timeline whose base carries an
// older time (the planner's t2v15 against t1v20) took the other timeline's lines with it.
func TestRetentionKeepsTheWindowRestorable(t *testing.T) {
	mfstest.RequireMooseFS(t)
	js := jstest.Start(t)
	ctx := context.Background()
	store := signedStore(t, js)
	const window = 72 * time.Hour
	now := time.Now()
	// Timeline 1: lines 1..3000 from 100 h ago to 10 h ago (the window starts near line 934).
	t1 := func(v int) int64 { return now.Add(-100*time.Hour).Unix() + int64(v)*108 }
	// Timeline 2: a master started from metadata of version 2001, 5 h ago.
	t2 := func(v int) int64 { return now.Add(-5*time.Hour).Unix() + int64(v-2001)*30 }
	tune := func(c *shipper.Config) {
		c.Retention, c.MaxBatchBytes, c.SnapshotPoll = window, 16<<10, 50*time.Millisecond
	}

	dir1 := t.TempDir()
	os.WriteFile(filepath.Join(dir1, "changelog.0.mfs"), []byte(historyAt(1, 3000, t1)), 0o644)
	sh, stop := startShipper(t, js, store, dir1, tune)
	waitFor(t, "timeline 1 shipped", func() bool { return sh.Shipped().Next == 3001 })
	check := func(when string) {
		t.Helper()
		checkWindow(t, js, store, now, window, when)
	}
	check("before any snapshot")

	// The first real snapshot, inside the window: the window's first moments still need the
	// lines from version 1 (the empty file system).
	putSnapshot(t, store, dir1, 1000, t1(1001))
	check("after a snapshot inside the window")
	// A snapshot older than the window: the base; lines below it go.
	putSnapshot(t, store, dir1, 500, t1(501))
	waitFor(t, "the purge below timeline 1's base", func() bool { return timeline(t, js, 1).FirstVersion > 1 })
	check("after the base of timeline 1")
	if first := timeline(t, js, 1).FirstVersion; first > 502 {
		t.Fatalf("timeline 1 starts at %d after the purge; want the batch holding 502", first)
	}
	stop()

	// Timeline 2 forks from version 2001; its base snapshot carries an old time (90 h ago),
	// older than every kept snapshot of timeline 1 (its base is 85 h old).
	dir2 := t.TempDir()
	src, version := mfstest.MakeMetadata(t, t.TempDir(), 77, 1999)
	b, _ := os.ReadFile(src)
	os.WriteFile(filepath.Join(dir2, "metadata.mfs.back"), b, 0o644)
	old := now.Add(-90 * time.Hour)
	os.Chtimes(filepath.Join(dir2, "metadata.mfs.back"), old, old)
	os.WriteFile(filepath.Join(dir2, "changelog.0.mfs"), []byte(historyAt(int(version), 2500, t2)), 0o644)
	sh, _ = startShipper(t, js, store, dir2, tune)
	waitFor(t, "timeline 2 shipped with its base", func() bool {
		_, err := store.Get(ctx, stream.SnapshotName(2, version))
		return sh.Shipped().Timeline == 2 && sh.Shipped().Next == 2501 && err == nil
	})
	// The upload's retention has run once the snapshot is listed; wait for its purge too.
	time.Sleep(200 * time.Millisecond)
	check("after timeline 2's base")
	if first := timeline(t, js, 1).FirstVersion; first <= 1 || first > 502 {
		t.Fatalf("timeline 1 starts at %d after timeline 2's purge; want the batch holding 502", first)
	}
}

// historyAt is history with line v at time at(v).
func historyAt(from, to int, at func(int) int64) string {
	var b strings.Builder
	for v := from; v <= to; v++ {
		if v == 1 {
			fmt.Fprintf(&b, "1: %d|SETMETAID(77)\n", at(1))
			continue
		}
		fmt.Fprintf(&b, "%d: %d|CREATE(1,f%d,1,420,18,0,0,0):%d\n", v, at(v), v, v)
	}
	return b.String()
}

// putSnapshot renames into dir, as mfsmaster does, a real metadata file of inodes files
// (version inodes+2) taken at unix time at, and waits for its upload.
func putSnapshot(t *testing.T, store *snapshot.Store, dir string, inodes int, at int64) {
	t.Helper()
	src, version := mfstest.MakeMetadata(t, t.TempDir(), 77, inodes)
	b, _ := os.ReadFile(src)
	tmp := filepath.Join(dir, "metadata.mfs.back.tmp")
	os.WriteFile(tmp, b, 0o644)
	os.Chtimes(tmp, time.Unix(at, 0), time.Unix(at, 0))
	if err := os.Rename(tmp, filepath.Join(dir, "metadata.mfs.back")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the upload of "+stream.SnapshotName(1, version), func() bool {
		_, err := store.Get(context.Background(), stream.SnapshotName(1, version))
		return err == nil
	})
	time.Sleep(200 * time.Millisecond) // retention runs right after the upload
}

func timeline(t *testing.T, js jetstream.JetStream, tl uint64) stream.Timeline {
	t.Helper()
	tls, err := stream.Timelines(context.Background(), js, cluster)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range tls {
		if x.Timeline == tl {
			return x
		}
	}
	t.Fatalf("no timeline %d in %+v", tl, tls)
	return stream.Timeline{}
}

// checkWindow checks that every moment of the window on every timeline can be restored: for
// moments a quarter of an hour apart, a plan exists and the stream holds every line it needs; and a real
// fold of each timeline's first moment in the window holds exactly the files it should.
func checkWindow(t *testing.T, js jetstream.JetStream, store *snapshot.Store, now time.Time, window time.Duration, when string) {
	t.Helper()
	ctx := context.Background()
	tls, err := stream.Timelines(ctx, js, cluster)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := now.Add(-window).Unix()
	for _, tl := range tls {
		from := max(start, tl.FirstTime)
		if tl.Parent == 0 && tl.FirstVersion > 1 && tl.FirstTime > start {
			t.Fatalf("%s: timeline %d starts at %s, inside the window", when, tl.Timeline, fmtUnix(tl.FirstTime))
		}
		for at := from; at <= tl.LastTime; at += 900 {
			target := Target{Time: time.Unix(at, 0)}
			p, err := CalcPlan(tls, snaps, tl.Timeline, target)
			if err != nil {
				t.Fatalf("%s: timeline %d at %s (window from %s): %v", when, tl.Timeline, fmtUnix(at), fmtUnix(start), err)
			}
			if _, err := streamLines(ctx, js, &batchCheck{v: testVerifier}, cluster, p, io.Discard); err != nil {
				t.Fatalf("%s: timeline %d at %s: lines %d..%d: %v", when, tl.Timeline, fmtUnix(at), p.From, p.To, err)
			}
		}
		p, err := CalcPlan(tls, snaps, tl.Timeline, Target{Time: time.Unix(from, 0)})
		if err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		o, err := Apply(ctx, js, store, p, Options{Cluster: cluster, OutDir: out, Mfsmaster: mfstest.Mfsmaster(t), Verifier: testVerifier})
		if err != nil {
			t.Fatalf("%s: restore of timeline %d at %s: %v", when, tl.Timeline, fmtUnix(from), err)
		}
		names := files(t, filepath.Join(out, "metadata.mfs"))
		last := int(o.Version) - 1
		if len(names) != last-1 || !names[fmt.Sprintf("f%d", last)] {
			t.Fatalf("%s: restore of timeline %d at %s: version %d with %d names; want f2..f%d", when, tl.Timeline, fmtUnix(from), o.Version, len(names), last)
		}
	}
}
