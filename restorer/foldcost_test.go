package restorer

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestFoldCostEstimate: folds of different sizes separate the per-line cost from the fixed
// one; folds all of one size give seconds/lines as an upper bound.
func TestFoldCostEstimate(t *testing.T) {
	var c foldCosts
	for _, lines := range []int{1000, 5000, 3000, 9000} {
		c.record(FoldRun{Took: time.Duration((2 + 0.0005*float64(lines)) * float64(time.Second))}, lines, time.Second)
	}
	fc := c.last
	if math.Abs(fc.PerLine-0.0005) > 1e-9 || math.Abs(fc.Fixed-2) > 1e-6 {
		t.Fatalf("per line %g s, fixed %g s; want 0.0005 and 2", fc.PerLine, fc.Fixed)
	}
	var same foldCosts
	for i := 0; i < 4; i++ {
		same.record(FoldRun{Took: 3 * time.Second}, 50000, 4*time.Second)
	}
	if fc := same.last; fc.PerLine != 3.0/50000 || fc.Fixed != 0 || fc.Lines != 50000 || fc.Seconds != 4 {
		t.Fatalf("folds of one size: %+v; want per line 3/50000 (an upper bound), fixed 0", fc)
	}
}

// TestStandbyFoldCost: a standby folding with the real mfsmaster reports what its folds cost
// (peak RSS, CPU, lines, per-line estimate) in FoldCost and in its metrics.
func TestStandbyFoldCost(t *testing.T) {
	js, store, _ := shipped(t) // lines 1..3001 and a snapshot of version 1002
	cfg := DefaultStandbyConfig()
	cfg.Cluster, cfg.Dir, cfg.Poll = cluster, t.TempDir(), 50*time.Millisecond
	cfg.Mfsmaster = mfstest.Mfsmaster(t)
	cfg.Verifier = testVerifier
	reg := prometheus.NewRegistry()
	m := NewStandbyMetrics(reg)
	sb, err := NewStandby(cfg, js, store, slog.New(slog.DiscardHandler), m)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sb.FoldCost(); ok {
		t.Fatal("FoldCost ok before any fold")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	// The cost is recorded just after the new position: wait for both.
	fc, ok := sb.FoldCost()
	for sb.Materialized().Version != 3002 || !ok {
		if time.Now().After(deadline) {
			t.Fatalf("materialized %+v, fold cost %v, want version 3002 and a cost", sb.Materialized(), ok)
		}
		time.Sleep(20 * time.Millisecond)
		fc, ok = sb.FoldCost()
	}
	if !ok || fc.Lines != 2000 || fc.PeakRSS < 1<<20 || fc.MfsmasterSeconds <= 0 || fc.Seconds < fc.MfsmasterSeconds || fc.PerLine <= 0 {
		t.Fatalf("FoldCost after folding lines 1002..3001: %+v, %v; want 2000 lines, mfsmaster's RSS and time, a per-line cost", fc, ok)
	}
	if got := testutil.ToFloat64(m.Cost.PeakRSS); got != float64(fc.PeakRSS) {
		t.Fatalf("mfsha_standby_fold_peak_rss_bytes = %g, want %d", got, fc.PeakRSS)
	}
	if got := testutil.ToFloat64(m.Cost.Lines); got != 2000 {
		t.Fatalf("mfsha_standby_fold_lines = %g, want 2000", got)
	}
	if n, err := testutil.GatherAndCount(reg, "mfsha_standby_replay_seconds_per_line", "mfsha_standby_fold_cpu_seconds_total"); err != nil || n != 2 {
		t.Fatalf("registered cost series: %d, %v; want 2", n, err)
	}
}

// TestFoldTimesReplay: folding 200,000 lines, the real mfsmaster prints progress while it
// replays; the fold's replay time comes from it, shorter than the whole run, and the cost
// per line is measured rather than fitted.
func TestFoldTimesReplay(t *testing.T) {
	mfstest.RequireMooseFS(t)
	work, data, u := foldInput(t, history(1, 200000))
	run, err := fold(context.Background(), mfstest.Mfsmaster(t).Path, work, data, u, 0)
	if err != nil {
		t.Fatal(err)
	}
	if run.Replay <= 0 || run.Replay >= run.Took {
		t.Fatalf("fold %+v: want a replay time from mfsmaster's progress, shorter than the run", run)
	}
	var c foldCosts
	fc := c.record(run, 200000, run.Took)
	if want := run.Replay.Seconds() / 200000; fc.PerLine != want || fc.Fixed <= 0 {
		t.Fatalf("cost %+v: want per line %g (measured) and a fixed part", fc, want)
	}
	t.Logf("200,000 lines: run %v, replay %v, %.2f µs/line", run.Took, run.Replay, fc.PerLine*1e6)
}

// foldInput makes a fold's work directory (closed with the test) and in it the data directory
// of an empty file system and the changelog lines, owned by the fold user as Apply leaves
// them. It returns both directories and the fold user.
func foldInput(t *testing.T, lines string) (work, data string, u FoldUser) {
	t.Helper()
	u, err := LookupFoldUser("")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := newWorkspace(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	data = filepath.Join(ws.dir, "data")
	if err := prepareData(data, u); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"metadata.mfs": "MFSM NEW", "changelog.0.mfs": lines} {
		p := filepath.Join(data, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if err := os.Chown(p, u.UID, u.GID); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ws.dir, data, u
}
