package restorer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/stream"
)

// unshippedFrom is the first version of the materialized timeline that the stream does not
// hold yet (as far as the standby last saw it): pending.mfs keeps the lines from there on even
// once they are folded. They came from the metalogger, and only this host has them.
//
// Why: the old master can die with lines its metalogger got but its shipper had not shipped.
// A standby that folded them and is then promoted starts mfsmaster on metadata that holds
// them; the stream must get them too, or its next line would follow a hole (the new master's
// shipper stops at it, and every other standby and restore with it). HandOver gives these lines
// to the new master as changelog.1.mfs, whose shipper then ships them, signed, before its own
// (mfsmaster -a skips lines below the metadata's version).
func unshippedFrom(pos Position, tl *stream.Timeline) uint64 {
	if tl == nil || tl.Timeline != pos.Timeline || tl.LastVersion+1 >= pos.Version {
		return pos.Version
	}
	return tl.LastVersion + 1
}

// checkUnshipped compares the lines pending.mfs keeps below the materialized version (folded
// from the metalogger before the stream had them) with the stream's, once the stream holds
// those versions. Equal, they are shipped: the next fold drops them. Different, the stream
// went on with another history (a standby without those lines was promoted) and the
// materialized metadata holds lines no master will ever serve: the standby forgets its
// position (done true) and resynchronizes from the stream at its next fold, saying so. It is
// called by follow with mu held.
//
// Safety: until it has resynchronized such a standby is not current (Lag: nothing
// materialized), so it is never promoted with the dead branch's lines.
func (s *Standby) checkUnshipped(ctx context.Context, tl *stream.Timeline) (done bool, err error) {
	pos := s.Materialized()
	if s.keptFrom == 0 || tl == nil || tl.Timeline != pos.Timeline || tl.LastVersion < s.keptFrom {
		return false, nil
	}
	to := min(tl.LastVersion, pos.Version-1)
	var theirs bytes.Buffer
	res, err := streamLines(ctx, s.js, s.check, s.cfg.Cluster, Plan{Timeline: *tl, From: s.keptFrom, To: to}, &theirs)
	if err != nil {
		return false, err
	}
	if res.Lines != int(to-s.keptFrom+1) {
		return false, fmt.Errorf("standby: the stream's lines %d-%d: got %d", s.keptFrom, to, res.Lines)
	}
	mine, err := os.Open(s.pendingPath())
	if err != nil {
		return false, fmt.Errorf("standby: %w", err)
	}
	defer mine.Close()
	sc := changelog.NewScanner(mine, s.pendingPath())
	their := bufio.NewScanner(&theirs)
	their.Buffer(make([]byte, 0, 64<<10), changelog.MaxLineBytes+1)
	for sc.Scan() {
		v := sc.Line().Version
		if v < s.keptFrom {
			continue
		}
		if v > to || !their.Scan() {
			break
		}
		if stream.LineHash(sc.Raw()) != stream.LineHash(their.Bytes()) {
			s.log.Error("the stream went on with another history than the lines this standby folded from its metalogger: resynchronizing",
				"version", v, "materialized", pos, "timeline", tl.Timeline)
			if err := writeState(s.statePath(), Position{}); err != nil {
				return false, err
			}
			s.pos.Store(&Position{})
			s.local, s.localHash, s.keptFrom = 0, 0, 0
			s.m.Materialized.Set(0)
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("standby: %w", err)
	}
	if to+1 < pos.Version {
		s.keptFrom = to + 1
	} else {
		s.keptFrom = 0
	}
	return false, nil
}
