package restorer

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
)

func TestCalcPlan(t *testing.T) {
	tls := []stream.Timeline{
		{Timeline: 1, FirstVersion: 5000, LastVersion: 9000, FirstTime: 1000, LastTime: 2000},
		{Timeline: 2, FirstVersion: 7000, LastVersion: 7500, FirstTime: 3000, LastTime: 3500},
	}
	snaps := []snapshot.Snapshot{
		{Name: "a", Timeline: 1, Version: 5000, Time: 1000},
		{Name: "b", Timeline: 1, Version: 8000, Time: 1800},
		{Name: "c", Timeline: 2, Version: 7000, Time: 3000},
	}
	for _, tc := range []struct {
		timeline uint64
		target   Target
		snap     string
		from, to uint64
		err      error
		msg      string
	}{
		{0, Target{}, "c", 7000, 7500, nil, ""},                         // the newest timeline
		{1, Target{Version: 8500}, "b", 8000, 8500, nil, ""},            // newest snapshot at or before
		{1, Target{Version: 7999}, "b", 8000, 7999, nil, ""},            // b holds every change below 8000: exactly the target
		{1, Target{Version: 7998}, "a", 5000, 7998, nil, ""},            // b is past the target
		{1, Target{Version: 8000}, "b", 8000, 8000, nil, ""},            // b and line 8000
		{1, Target{Time: time.Unix(1700, 0)}, "a", 5000, 9000, nil, ""}, // b was taken after the target time
		{1, Target{Version: 9001}, "", 0, 0, ErrAfterNewest, "timeline 1 holds versions 5000..9000"},
		{3, Target{}, "", 0, 0, ErrNoTimeline, "timelines 1, 2"},
		{1, Target{Version: 4000}, "", 0, 0, ErrBeforeRetention, "oldest snapshot of that timeline: version 5000"},
		{2, Target{Time: time.Unix(2999, 0)}, "", 0, 0, ErrBeforeRetention, "timeline 2 holds"},
	} {
		p, err := CalcPlan(tls, snaps, tc.timeline, tc.target)
		if errors.Is(err, ErrNoSnapshot) {
			t.Errorf("timeline %d %s: %v; ErrNoSnapshot, but the timeline has snapshots", tc.timeline, tc.target, err)
		}
		if tc.err != nil {
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("timeline %d %s: got %v, want %v with %q", tc.timeline, tc.target, err, tc.err, tc.msg)
			}
			continue
		}
		if err != nil || p.Snapshot == nil || p.Snapshot.Name != tc.snap || p.From != tc.from || p.To != tc.to {
			t.Errorf("timeline %d %s: got %+v (snapshot %v), %v; want snapshot %s, lines %d..%d", tc.timeline, tc.target, p, p.Snapshot, err, tc.snap, tc.from, tc.to)
		}
	}
}

// A timeline with no snapshot at all (a cluster's start, before the master's first one is
// stored) is ErrNoSnapshot as well as ErrBeforeRetention: a new standby waits without an error.
func TestCalcPlanNoSnapshotYet(t *testing.T) {
	tls := []stream.Timeline{{Timeline: 1, FirstVersion: 5000, LastVersion: 5003, FirstTime: 1000, LastTime: 1001}}
	_, err := CalcPlan(tls, nil, 0, Target{})
	if !errors.Is(err, ErrNoSnapshot) || !errors.Is(err, ErrBeforeRetention) || !strings.Contains(err.Error(), "oldest snapshot of that timeline: none") {
		t.Fatalf("no snapshot: %v; want ErrNoSnapshot and ErrBeforeRetention", err)
	}
}
