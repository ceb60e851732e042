package shipper

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/stream"
)

// TestBatchDelayCoalescesLines: a master writing one line per write(2), a thousand a second,
// gets its lines shipped in at most one batch per BATCH_DELAY (plus the first and the last),
// not one per file event, and every line arrives.
func TestBatchDelayCoalescesLines(t *testing.T) {
	n := startNATS(t)
	dir := masterDir(t)
	writeFile(t, logPath(dir, 0), lines(1, 1))
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Kind, cfg.Cluster = dir, KindMaster, testCluster
	cfg.BatchDelay, cfg.Poll = 100*time.Millisecond, time.Hour // no read but those file events start
	r := startConfigured(t, n, cfg)
	waitShipped(t, r, 1, 1)

	f, err := os.OpenFile(logPath(dir, 0), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const total = 1000
	start := time.Now()
	for v := uint64(2); v <= total; v++ {
		if _, err := f.WriteString(lines(v, v)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	waitShipped(t, r, 1, total)

	st, err := n.js.Stream(context.Background(), stream.StreamName(testCluster))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// forwardEvents wakes the reader at most once per BATCH_DELAY, from the first write to
	// one BATCH_DELAY after the last (took/delay + 2 wake-ups, rounded up), and each wake-up
	// makes one batch; the first line's batch comes before. A slow machine makes fewer, never
	// more. Reading on every event instead made 690 batches here.
	limit := 1 + int(took/cfg.BatchDelay) + 3
	t.Logf("%d lines written one per write(2) in %v: %d batches (at most %d allowed)", total-1, took.Round(time.Millisecond), info.State.Msgs, limit)
	if int(info.State.Msgs) > limit {
		t.Errorf("%d batches for %d lines written over %v: want at most %d (one per BATCH_DELAY %v)", info.State.Msgs, total-1, took.Round(time.Millisecond), limit, cfg.BatchDelay)
	}
	checkStream(t, n, map[uint64]string{1: lines(1, total)})
}
