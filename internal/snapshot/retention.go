package snapshot

import (
	"sort"
	"time"
)

// PlanPrune decides which snapshots retention keeps: every snapshot taken within window of now,
// the newest one older than that (so that the whole window can be restored: it is the base for
// the window's first moments), and the newest snapshot of every timeline. It drops the rest.
// Both lists are sorted by time.
func PlanPrune(snaps []Snapshot, now time.Time, window time.Duration) (keep, drop []Snapshot) {
	sorted := append([]Snapshot(nil), snaps...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time < sorted[j].Time })
	cutoff := now.Add(-window).Unix()
	newestOld := -1
	newestOfTimeline := map[uint64]int{}
	for i, s := range sorted {
		if s.Time < cutoff {
			newestOld = i
		}
		if j, ok := newestOfTimeline[s.Timeline]; !ok || sorted[j].Version < s.Version {
			newestOfTimeline[s.Timeline] = i
		}
	}
	for i, s := range sorted {
		keepIt := s.Time >= cutoff || i == newestOld || newestOfTimeline[s.Timeline] == i
		if keepIt {
			keep = append(keep, s)
		} else {
			drop = append(drop, s)
		}
	}
	return keep, drop
}
