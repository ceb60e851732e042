package restorer

import (
	"testing"
	"time"
)

// TestFoldDue: FOLD_LINES, FOLD_EVERY and the replay estimate start a fold; the CPU bound
// holds each back until the last fold's CPU time over FOLD_CPU_PERCENT has passed; lines that
// change nothing start a fold only by FOLD_LINES.
func TestFoldDue(t *testing.T) {
	cfg := DefaultStandbyConfig() // FOLD_LINES 50,000, FOLD_EVERY 30 s, FOLD_REPLAY 1 s, 50 %
	s := &Standby{cfg: cfg}
	t0 := time.Unix(1700000000, 0)
	if due, why := s.foldDue(100, true, t0); !due {
		t.Fatalf("first fold with lines waiting: not due (%s)", why)
	}
	if due, _ := s.foldDue(0, true, t0); due {
		t.Fatal("nothing waiting: due")
	}
	// A fold of 50,000 lines that took 10 s and 10 s of CPU: 200 µs a line at most, and the
	// next fold no sooner than 20 s after it began.
	s.costs.record(FoldRun{Took: 10 * time.Second, CPU: 10 * time.Second}, 50000, 11*time.Second)
	s.lastFoldStart, s.lastFold = t0, t0.Add(11*time.Second)
	for _, c := range []struct {
		waiting int64
		changed bool
		at      time.Duration // after t0
		want    bool
	}{
		{60000, true, 12 * time.Second, false}, // FOLD_LINES reached, CPU bound holds it back
		{60000, true, 20 * time.Second, true},  // ... until 20 s after the fold began
		{60000, false, 20 * time.Second, true}, // FOLD_LINES counts every line
		{5000, true, 20 * time.Second, true},   // 5,000 x 200 µs = 1 s: FOLD_REPLAY
		{4000, true, 20 * time.Second, false},  // 0.8 s, FOLD_EVERY not passed
		{5000, false, 20 * time.Second, false}, // lines that change nothing (IDLE)
		{4000, true, 41 * time.Second, true},   // FOLD_EVERY passed since the fold ended
		{4000, false, 41 * time.Second, false}, // ... but not for IDLE lines
		{5000, true, 19 * time.Second, false},  // replay bound, CPU bound holds it back
	} {
		if due, why := s.foldDue(c.waiting, c.changed, t0.Add(c.at)); due != c.want {
			t.Errorf("%d lines (changed %v) %v after the last fold began: due %v (%s), want %v", c.waiting, c.changed, c.at, due, why, c.want)
		}
	}
}
