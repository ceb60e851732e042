package shipper

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// gathered reads one metric (without labels, or the sum over them) from a registry.
func gathered(t *testing.T, reg *prometheus.Registry, name string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			switch {
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			}
		}
		return sum, true
	}
	return 0, false
}

// TestMetricsThroughTheRegistry: what the shipper exports, read back from its registry as
// Prometheus would: versions and lines while shipping, then mfsha_ship_gap = 1 and the gap
// counted once the files lose lines the stream needs.
func TestMetricsThroughTheRegistry(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 300))
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Kind, cfg.Cluster, cfg.Poll, cfg.MaxBatchBytes = dir, KindMaster, testCluster, 20e6, 4<<10
	cfg.Signer = n.keys.Signer
	sh, err := New(cfg, n.js, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	r := &running{sh: sh, cancel: cancel, done: done}
	waitShipped(t, r, 1, 300)
	for name, want := range map[string]float64{"mfsha_ship_last_version": 300, "mfsha_ship_lines_total": 300, "mfsha_ship_timeline": 1, "mfsha_ship_gap": 0} {
		if got, ok := gathered(t, reg, name); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if got, _ := gathered(t, reg, "mfsha_ship_batches_total"); got < 2 {
		t.Errorf("mfsha_ship_batches_total = %v, want several 4 kB batches", got)
	}
	// The live file is replaced by one that starts after a hole: a gap.
	tmp := filepath.Join(dir, "new.tmp")
	writeFile(t, tmp, lines(350, 360))
	if err := os.Rename(tmp, logPath(dir, 0)); err != nil {
		t.Fatal(err)
	}
	if err := r.waitErr(t); !errors.Is(err, ErrGap) {
		t.Fatalf("got %v, want ErrGap", err)
	}
	if got, ok := gathered(t, reg, "mfsha_ship_gap"); !ok || got != 1 {
		t.Errorf("mfsha_ship_gap = %v (present %v) after a gap, want 1", got, ok)
	}
	if got, _ := gathered(t, reg, "mfsha_ship_errors_total"); got < 1 {
		t.Errorf("mfsha_ship_errors_total = %v after a gap, want it counted", got)
	}
}
