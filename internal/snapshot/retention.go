package snapshot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// PlanPrune decides what retention keeps so that any moment of the last window stays
// restorable. For every timeline it keeps:
//
//   - every snapshot taken within the window (Time > now-window);
//   - its base: the newest (highest version) of its snapshots taken at or before now-window,
//     from which the window's first moments on that timeline are restored;
//   - its newest snapshot, whatever its age;
//
// and it drops the rest. The base is chosen per timeline, not once for all, because a restore
// uses only snapshots of its own timeline; in the usual history (a timeline that starts within
// the window has nothing older) this keeps nothing more. Both lists are sorted by time, then
// timeline, then version: keep[0] is the oldest snapshot kept. PlanPrune is pure; Prune
// applies it.
func PlanPrune(snaps []Snapshot, now time.Time, window time.Duration) (keep, drop []Snapshot) {
	cutoff := now.Add(-window).Unix()
	type marks struct{ newest, base int }
	byTimeline := map[uint64]*marks{}
	for i, s := range snaps {
		m := byTimeline[s.Timeline]
		if m == nil {
			m = &marks{newest: i, base: -1}
			byTimeline[s.Timeline] = m
		}
		if s.Version > snaps[m.newest].Version {
			m.newest = i
		}
		if s.Time <= cutoff && (m.base < 0 || s.Version > snaps[m.base].Version) {
			m.base = i
		}
	}
	for i, s := range snaps {
		m := byTimeline[s.Timeline]
		if s.Time > cutoff || i == m.newest || i == m.base {
			keep = append(keep, s)
		} else {
			drop = append(drop, s)
		}
	}
	byTime := func(a, b Snapshot) int {
		return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(a.Timeline, b.Timeline), cmp.Compare(a.Version, b.Version))
	}
	slices.SortFunc(keep, byTime)
	slices.SortFunc(drop, byTime)
	return keep, drop
}

// PurgePoints tells, per timeline, the snapshot below whose version that timeline's changelog
// lines are no longer needed: its base, the newest (highest version) of its snapshots taken at
// or before now-window. Every moment of the window on that timeline is then restored from the
// base or a later snapshot, rolled forward with lines from its version on. A timeline without
// a base keeps all its lines: its moments in the window before its first snapshot are restored
// from older lines (from the empty file system of version 1, which is never uploaded, when the
// timeline starts there). Each timeline is decided alone: lines of one timeline never serve
// another's restore, whatever the times of their snapshots. PurgePoints is pure.
func PurgePoints(snaps []Snapshot, now time.Time, window time.Duration) map[uint64]Snapshot {
	cutoff := now.Add(-window).Unix()
	points := map[uint64]Snapshot{}
	for _, s := range snaps {
		if s.Time > cutoff {
			continue
		}
		if b, ok := points[s.Timeline]; !ok || s.Version > b.Version {
			points[s.Timeline] = s
		}
	}
	return points
}

// Prune deletes the snapshots PlanPrune drops from what List returns, and returns them. A
// snapshot deleted meanwhile by someone else counts as deleted. It stops at the first other
// error, returning what it deleted until then.
func (s *Store) Prune(ctx context.Context, now time.Time, window time.Duration) ([]Snapshot, error) {
	snaps, err := s.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	_, drop := PlanPrune(snaps, now, window)
	for i, d := range drop {
		if err := s.Delete(ctx, d.Name); err != nil && !errors.Is(err, ErrNotFound) {
			return drop[:i], fmt.Errorf("prune: %w", err)
		}
	}
	return drop, nil
}
