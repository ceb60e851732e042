package snapshot

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/mfstest"
)

func TestPlanPrune(t *testing.T) {
	now := time.Unix(10_000_000, 0)
	const window = 24 * time.Hour
	// snap(timeline, version, hours ago); its name is "t<timeline>v<version>".
	snap := func(tl, v uint64, hoursAgo int64) Snapshot {
		return Snapshot{Name: "t" + strconv.FormatUint(tl, 10) + "v" + strconv.FormatUint(v, 10), Timeline: tl, Version: v, Time: now.Unix() - hoursAgo*3600}
	}
	names := func(ss []Snapshot) string {
		var n []string
		for _, s := range ss {
			n = append(n, s.Name)
		}
		return strings.Join(n, " ")
	}
	for _, tc := range []struct {
		name       string
		in         []Snapshot
		keep, drop string
	}{
		{"empty", nil, "", ""},
		{"all within the window",
			[]Snapshot{snap(1, 10, 3), snap(1, 20, 2), snap(1, 30, 1)}, "t1v10 t1v20 t1v30", ""},
		{"the newest older one is the window's base",
			[]Snapshot{snap(1, 10, 50), snap(1, 20, 30), snap(1, 30, 26), snap(1, 40, 10)}, "t1v30 t1v40", "t1v10 t1v20"},
		{"one taken exactly at the window's start is the base",
			[]Snapshot{snap(1, 10, 30), snap(1, 20, 24), snap(1, 30, 1)}, "t1v20 t1v30", "t1v10"},
		{"only old ones: the newest stays",
			[]Snapshot{snap(1, 10, 100), snap(1, 20, 90), snap(1, 30, 80)}, "t1v30", "t1v10 t1v20"},
		{"the newest of a past timeline stays",
			[]Snapshot{snap(1, 10, 100), snap(1, 20, 90), snap(2, 15, 30), snap(2, 25, 2)}, "t1v20 t2v15 t2v25", "t1v10"},
		{"the base is kept per timeline",
			// Timeline 2 forked from version 15 of timeline 1 and its first snapshot carries
			// the old time of that version: timeline 1 still needs its own base.
			[]Snapshot{snap(1, 10, 60), snap(1, 20, 40), snap(1, 30, 20), snap(2, 15, 45), snap(2, 40, 2)},
			"t2v15 t1v20 t1v30 t2v40", "t1v10"},
		{"input order does not matter",
			[]Snapshot{snap(1, 40, 10), snap(1, 10, 50), snap(1, 30, 26), snap(1, 20, 30)}, "t1v30 t1v40", "t1v10 t1v20"},
	} {
		keep, drop := PlanPrune(tc.in, now, window)
		if names(keep) != tc.keep || names(drop) != tc.drop {
			t.Errorf("%s:\nkeep %q drop %q\nwant keep %q drop %q", tc.name, names(keep), names(drop), tc.keep, tc.drop)
		}
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	now := time.Unix(10_000_000, 0)
	var names []string
	for i, inodes := range []int{10, 20, 30} { // taken 50, 30 and 1 hours ago
		path, _ := mfstest.MakeMetadata(t, t.TempDir(), 5, inodes)
		snap, err := s.Upload(ctx, path, Info{Timeline: 1, Time: now.Unix() - []int64{50, 30, 1}[i]*3600})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, snap.Name)
	}
	dropped, err := s.Prune(ctx, now, 24*time.Hour)
	if err != nil || len(dropped) != 1 || dropped[0].Name != names[0] {
		t.Fatalf("Prune = %+v, %v; want %s dropped", dropped, err, names[0])
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != names[1] || list[1].Name != names[2] {
		t.Fatalf("List after Prune = %+v, %v; want %v", list, err, names[1:])
	}
	var chunks uint64
	for _, n := range names[1:] {
		oi, _, err := s.lookup(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		chunks += uint64(oi.Chunks)
	}
	// Two objects' chunks and metadata, and the deleted one's marker.
	if got, want := storedMsgs(t, s), chunks+3; got != want {
		t.Fatalf("the bucket's stream holds %d messages; want %d: the dropped snapshot's chunks gone", got, want)
	}
}

func TestPurgePoints(t *testing.T) {
	now := time.Unix(10_000_000, 0)
	const window = 24 * time.Hour
	snap := func(tl, v uint64, hoursAgo int64) Snapshot {
		return Snapshot{Name: "t" + strconv.FormatUint(tl, 10) + "v" + strconv.FormatUint(v, 10), Timeline: tl, Version: v, Time: now.Unix() - hoursAgo*3600}
	}
	for _, tc := range []struct {
		name string
		in   []Snapshot
		want map[uint64]string
	}{
		// Found by trying it: the first real snapshot, inside the window, purged the lines
		// before it, and the window's first moments (from the empty file system) were lost.
		{"only snapshots inside the window: no purge", []Snapshot{snap(1, 270, 1)}, map[uint64]string{}},
		{"the base is the purge point", []Snapshot{snap(1, 10, 30), snap(1, 20, 25), snap(1, 30, 1)}, map[uint64]string{1: "t1v20"}},
		// The planner's case: timeline 2's first snapshot carries an older time than timeline
		// 1's; each timeline keeps what its own snapshots need.
		{"per timeline", []Snapshot{snap(1, 20, 40), snap(1, 30, 20), snap(2, 15, 45), snap(2, 40, 2)}, map[uint64]string{1: "t1v20", 2: "t2v15"}},
		{"a timeline without a base keeps everything", []Snapshot{snap(1, 20, 40), snap(2, 15, 2)}, map[uint64]string{1: "t1v20"}},
	} {
		got := PurgePoints(tc.in, now, window)
		names := map[uint64]string{}
		for tl, s := range got {
			names[tl] = s.Name
		}
		if len(names) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, names, tc.want)
			continue
		}
		for tl, n := range tc.want {
			if names[tl] != n {
				t.Errorf("%s: got %v, want %v", tc.name, names, tc.want)
			}
		}
	}
}
