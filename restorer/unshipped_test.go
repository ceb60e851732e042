package restorer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/mfstest"

	"github.com/mfsha/mfsha/internal/stream"
)

// A fold keeps in pending.mfs the lines the stream does not hold yet (they came from the
// metalogger): a promotion hands them to the new master, whose shipper ships them.
func TestFoldKeepsUnshippedLines(t *testing.T) {
	cases := []struct {
		name string
		tl   *stream.Timeline
		want uint64
	}{
		{"the stream holds every folded line", &stream.Timeline{Timeline: 1, LastVersion: 30}, 12},
		{"the stream ends at 7: lines 8 on came from the metalogger", &stream.Timeline{Timeline: 1, LastVersion: 7}, 8},
		{"the stream ends at 11, just below the metadata", &stream.Timeline{Timeline: 1, LastVersion: 11}, 12},
		{"the stream moved to another timeline", &stream.Timeline{Timeline: 2, LastVersion: 7}, 12},
		{"no stream seen", nil, 12},
	}
	pos := Position{Timeline: 1, Version: 12}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := unshippedFrom(pos, c.tl); got != c.want {
				t.Fatalf("unshippedFrom = %d, want %d", got, c.want)
			}
			dir := t.TempDir()
			s := &Standby{cfg: StandbyConfig{Dir: dir}, local: 21}
			s.pos.Store(&pos)
			if err := os.WriteFile(s.pendingPath(), []byte(history(5, 20)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := s.compact(false, unshippedFrom(pos, c.tl)); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(filepath.Join(dir, "pending.mfs"))
			if string(b) != history(int(c.want), 20) {
				t.Fatalf("pending.mfs after the fold:\n%s\nwant lines %d to 20", b, c.want)
			}
			// Loading it again still resumes after line 20 (the kept lines are below the
			// materialized version).
			if err := s.loadPending(); err != nil || s.Local() != 20 {
				t.Fatalf("after loadPending: local %d (%v), want 20", s.Local(), err)
			}
		})
	}
}

// A standby merges its metalogger's lines even when its own last line is only in the stream
// (nothing pending after a fold and a restart), and after a restart keeps merging from the
// lines it folded but the stream lacks.
func TestStandbyMergesMetaloggerAfterRestart(t *testing.T) {
	js, store, _ := shipped(t) // lines 1..3001 and a snapshot of version 1002
	sdir, ml := t.TempDir(), t.TempDir()
	cfg := DefaultStandbyConfig()
	cfg.Cluster, cfg.Dir, cfg.FoldLines, cfg.FoldEvery, cfg.Poll = cluster, sdir, 500, time.Second, 50*time.Millisecond
	cfg.Mfsmaster = mfstest.Mfsmaster(t)
	cfg.Verifier = testVerifier
	run := func() (*Standby, func()) { return startStandby(t, cfg, js, store) }
	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	sb, stop := run()
	wait("the stream's lines folded", func() bool { return sb.Materialized().Version == 3002 })
	stop()

	cfg.MetaloggerDir = ml
	writeML := func(to int) {
		if err := os.WriteFile(filepath.Join(ml, "changelog_ml.0.mfs"), []byte(history(2990, to)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeML(3050)
	sb, stop = run()
	wait("the metalogger's lines after the stream's last one", func() bool { return sb.Local() == 3050 })
	wait("them folded", func() bool { return sb.Materialized().Version == 3051 })
	stop()
	if b, _ := os.ReadFile(filepath.Join(sdir, "pending.mfs")); string(b) != history(3002, 3050) {
		t.Fatalf("pending.mfs after folding the metalogger's lines holds\n%.300s\nwant lines 3002-3050 (the stream lacks them)", b)
	}

	writeML(3100)
	sb, stop = run()
	defer stop()
	wait("the metalogger's next lines after a restart", func() bool { return sb.Local() == 3100 })
}

// A standby that folded lines from its metalogger which the stream later holds otherwise (it
// went on with another history) resynchronizes from the stream instead of keeping them.
func TestStandbyResyncsWhenTheStreamForks(t *testing.T) {
	js, store, dir := shipped(t) // lines 1..3001 and a snapshot of version 1002, shipper running
	sdir, ml := t.TempDir(), t.TempDir()
	cfg := DefaultStandbyConfig()
	cfg.Cluster, cfg.Dir, cfg.FoldLines, cfg.FoldEvery, cfg.Poll = cluster, sdir, 500, time.Second, 50*time.Millisecond
	cfg.Mfsmaster = mfstest.Mfsmaster(t)
	cfg.Verifier = testVerifier
	cfg.MetaloggerDir = ml
	if err := os.WriteFile(filepath.Join(ml, "changelog_ml.0.mfs"), []byte(history(2990, 3050)), 0o644); err != nil {
		t.Fatal(err)
	}
	sb, stop := startStandby(t, cfg, js, store)
	defer stop()
	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (materialized %+v, local %d)", what, sb.Materialized(), sb.Local())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("the metalogger's lines folded", func() bool { return sb.Materialized().Version == 3051 })

	// The stream goes on from 3002 with other lines: g3002.. instead of f3002..
	var other strings.Builder
	for v := 3002; v <= 3060; v++ {
		fmt.Fprintf(&other, "%d: %d|CREATE(1,g%d,1,420,18,0,0,0):%d\n", v, 1700000000+v/100, v, v)
	}
	appendTo(t, filepath.Join(dir, "changelog.0.mfs"), other.String())
	wait("a resynchronization onto the stream's history", func() bool { return sb.Materialized().Version == 3061 })
	names := files(t, filepath.Join(sdir, "metadata.mfs"))
	if !names["g3060"] || names["f3050"] {
		t.Fatal("the materialized metadata does not hold the stream's history g3002..g3060 alone")
	}
}
