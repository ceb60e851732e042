// Package restorer rebuilds a MooseFS metadata.mfs as of a version or a moment, from a
// cluster's snapshots and changelog stream. Restoring is planned first (Plan, a pure function
// of what the stream holds) and applied afterwards, so `--dry-run` prints exactly what would be
// done.
package restorer

import (
	"errors"
	"fmt"
	"time"

	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
)

// Errors of planning, each wrapped with the range that is available; match with errors.Is.
var (
	ErrBeforeRetention = errors.New("target is before the oldest retained data")
	// ErrNoSnapshot is wrapped (with ErrBeforeRetention) when the timeline needs a snapshot and
	// has none at all: at a cluster's start, until the master's first snapshot is stored.
	ErrNoSnapshot  = errors.New("no snapshot of the timeline yet")
	ErrAfterNewest = errors.New("target is after the newest shipped change")
	ErrNoTimeline  = errors.New("no such timeline")
	ErrNothing     = errors.New("nothing to restore from")
	// ErrGap: a version in the range to apply is in no batch of the stream. Nothing past it
	// is ever produced.
	ErrGap = errors.New("changelog gap in the stream")
)

// Target is what to restore to: after line Version, or after the last line whose timestamp is
// at or before Time. Exactly one of Version and Time is set; neither means the newest state.
type Target struct {
	Version uint64    // 0: not by version
	Time    time.Time // zero: not by time
}

func (t Target) String() string {
	switch {
	case t.Version != 0:
		return fmt.Sprintf("version %d", t.Version)
	case !t.Time.IsZero():
		return "time " + t.Time.UTC().Format(time.RFC3339)
	}
	return "the newest state"
}

// Plan is how to rebuild the metadata.
type Plan struct {
	Timeline stream.Timeline
	// Snapshot to start from; nil means an empty file system (MooseFS's "MFSM NEW", version 1),
	// possible only while the timeline's stream still starts at version 1.
	Snapshot *snapshot.Snapshot
	// BaseFile, when set instead of Snapshot, is a local metadata file of version From to start
	// from (a standby's last materialized metadata).
	BaseFile string
	// LinesFile, when set, holds the lines to apply (whole lines, contiguous, starting at or
	// before From) instead of the stream: a standby's local copy.
	LinesFile string
	// Lines to apply: versions From..To of the timeline (From > To: none). For a time target,
	// To is an upper bound found from batch headers; the apply step stops at the last line
	// whose timestamp is at or before the target.
	From, To uint64
	Target   Target
}

// Result is the version the restored metadata file must have: the line after the last one
// applied. For a time target it is known only when applied.
func (p Plan) Result() uint64 { return p.To + 1 }

// CalcPlan picks the timeline (the newest, unless timeline > 0), the newest snapshot of that
// timeline at or before the target, and the lines from it up to the target. Errors name the
// available range.
func CalcPlan(tls []stream.Timeline, snaps []snapshot.Snapshot, timeline uint64, target Target) (Plan, error) {
	if len(tls) == 0 {
		return Plan{}, fmt.Errorf("%w: the stream holds no changelog", ErrNothing)
	}
	tl := tls[len(tls)-1]
	if timeline != 0 {
		found := false
		for _, t := range tls {
			if t.Timeline == timeline {
				tl, found = t, true
			}
		}
		if !found {
			return Plan{}, fmt.Errorf("%w %d: the stream holds timelines %s", ErrNoTimeline, timeline, timelineList(tls))
		}
	}
	avail := fmt.Sprintf("timeline %d holds versions %d..%d, %s..%s", tl.Timeline, tl.FirstVersion, tl.LastVersion,
		fmtUnix(tl.FirstTime), fmtUnix(tl.LastTime))
	if tl.BadSeq != 0 {
		avail += fmt.Sprintf("; stream message %d after them is unusable (%s)", tl.BadSeq, tl.BadErr)
	}
	p := Plan{Timeline: tl, Target: target}

	// The last line to apply (for a time: an upper bound).
	switch {
	case target.Version != 0:
		if target.Version > tl.LastVersion {
			return p, fmt.Errorf("%w: %s, %s", ErrAfterNewest, target, avail)
		}
		p.To = target.Version
	case !target.Time.IsZero():
		if target.Time.Unix() > tl.LastTime {
			return p, fmt.Errorf("%w: %s, %s", ErrAfterNewest, target, avail)
		}
		p.To = tl.LastVersion
	default:
		p.To = tl.LastVersion
	}

	// The newest snapshot of the timeline that the lines can roll forward to the target.
	for i := range snaps {
		s := snaps[i]
		if s.Timeline != tl.Timeline || s.Version > p.To+1 || s.Version < tl.FirstVersion {
			continue
		}
		if !target.Time.IsZero() && s.Time > target.Time.Unix() {
			continue
		}
		if p.Snapshot == nil || s.Version > p.Snapshot.Version {
			p.Snapshot = &snaps[i]
		}
	}
	switch {
	case p.Snapshot != nil:
		p.From = p.Snapshot.Version
	case tl.FirstVersion == 1:
		p.From = 1
	default:
		for _, s := range snaps {
			if s.Timeline == tl.Timeline {
				return p, fmt.Errorf("%w: %s needs a snapshot of timeline %d at or before it; oldest snapshot of that timeline: version %d at %s; %s",
					ErrBeforeRetention, target, tl.Timeline, s.Version, fmtUnix(s.Time), avail)
			}
		}
		return p, fmt.Errorf("%w: %w: %s needs a snapshot of timeline %d at or before it; oldest snapshot of that timeline: none; %s",
			ErrBeforeRetention, ErrNoSnapshot, target, tl.Timeline, avail)
	}
	if target.Version != 0 && target.Version+1 < p.From {
		return p, fmt.Errorf("%w: %s, %s", ErrBeforeRetention, target, avail)
	}
	if !target.Time.IsZero() && target.Time.Unix() < tl.FirstTime && p.Snapshot == nil {
		return p, fmt.Errorf("%w: %s, %s", ErrBeforeRetention, target, avail)
	}
	return p, nil
}

func timelineList(tls []stream.Timeline) string {
	s := ""
	for i, t := range tls {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprint(t.Timeline)
	}
	return s
}

func fmtUnix(t int64) string { return time.Unix(t, 0).UTC().Format(time.RFC3339) }
