package restorer

import "fmt"

// Lag is how many lines the materialized metadata.mfs is behind the newest line of the
// stream, as of the follower's last look at the stream (every Poll), for /standby. ok is false,
// with the reason, when the answer would mislead: nothing is materialized yet, the stream has
// not been read yet, or its newest timeline is not the materialized one (a resynchronization
// is due).
func (s *Standby) Lag() (lines uint64, ok bool, why string) {
	pos := s.Materialized()
	if pos.Version == 0 {
		return 0, false, "nothing is materialized yet"
	}
	tl := s.newest.Load()
	if tl == nil {
		return 0, false, "the stream has not been read yet"
	}
	if tl.Timeline != pos.Timeline {
		return 0, false, fmt.Sprintf("materialized on timeline %d, the stream's newest is timeline %d", pos.Timeline, tl.Timeline)
	}
	if next := tl.LastVersion + 1; next > pos.Version {
		return next - pos.Version, true, fmt.Sprintf("metadata at version %d, the stream's last line is %d", pos.Version, tl.LastVersion)
	}
	return 0, true, fmt.Sprintf("metadata at version %d holds the stream's last line %d", pos.Version, tl.LastVersion)
}
