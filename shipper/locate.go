package shipper

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// candidate is a changelog file with its first version.
type candidate struct {
	logFile
	first uint64
}

// locate opens the file that holds the line after the last one shipped. It returns false (and
// no error) when no file holds it yet: the reader has caught up.
//
// Decision, given the files that hold whole lines:
//   - nothing shipped yet: start at the oldest line of the newest history (see newestSegment);
//   - a file holds line Next-1 with PrevHash followed by another line, or starts with version
//     Next: resume there; consume then checks what follows (continue, fork or gap);
//   - the newest file ends with line Next-1 (PrevHash): caught up, wait;
//   - the newest file starts after Next: the lines between were rotated away: ErrGap;
//   - otherwise the newest file holds another history than the stream's (the master was
//     started from other metadata): a new timeline from the start of the newest history.
func (r *reader) locate() (bool, error) {
	files, err := r.candidates()
	if err != nil || len(files) == 0 {
		return false, err
	}
	if r.pos.Next == 0 {
		return r.startNewest(files)
	}
	// Closest first: the file with the greatest first version at or below Next.
	var below []candidate
	for _, c := range files {
		if c.first <= r.pos.Next && c.name != r.exclude {
			below = append(below, c)
		}
	}
	sort.SliceStable(below, func(i, j int) bool {
		if below[i].first != below[j].first {
			return below[i].first > below[j].first
		}
		return below[i].order > below[j].order
	})
	for _, c := range below {
		s, err := r.scan(c)
		if err != nil {
			return false, err
		}
		if s.found {
			return true, r.open(c.name, s.foundOff, s.foundLine-1)
		}
	}
	newest := files[len(files)-1]
	ns, err := r.scan(newest)
	if err != nil {
		return false, err
	}
	switch {
	case ns.prevFound, r.pos.PrevHash == 0 && ns.last < r.pos.Next:
		return false, nil
	case newest.first > r.pos.Next:
		return false, &GapError{Timeline: r.pos.Timeline, Want: r.pos.Next,
			Detail: fmt.Sprintf("the changelog files start at version %d (%s); the lines between were rotated away or deleted", r.firstAfter(files).first, r.firstAfter(files).name)}
	case r.exclude != "":
		return false, nil // the caller reports the gap it found
	}
	return r.fork(files)
}

func (r *reader) firstAfter(files []candidate) candidate {
	best := files[len(files)-1]
	for _, c := range files {
		if c.first > r.pos.Next && c.first < best.first {
			best = c
		}
	}
	return best
}

// startNewest positions at the start of the newest history: nothing has been shipped yet.
func (r *reader) startNewest(files []candidate) (bool, error) {
	name, off, line, _, err := r.newestSegment(files)
	if err != nil {
		return false, err
	}
	return true, r.open(name, off, line)
}

// fork starts a new timeline at the start of the newest history in the files.
func (r *reader) fork(files []candidate) (bool, error) {
	name, off, line, v, err := r.newestSegment(files)
	if err != nil {
		return false, err
	}
	// consume sees a version below Next and opens the new timeline there; make sure it does
	// even when the new history's versions are above the old ones.
	if v >= r.pos.Next {
		r.pos.Next = v + 1
	}
	r.pos.PrevHash = 0
	return true, r.open(name, off, line)
}

// newestSegment finds where the newest run of contiguous versions starts: in the newest file
// after its last backward jump, extended back through older files whose last run reaches the
// start (a metalogger's files overlap; a master's abut).
func (r *reader) newestSegment(files []candidate) (name string, off int64, lineNo int, version uint64, err error) {
	i := len(files) - 1
	s, err := r.scan(files[i])
	if err != nil {
		return "", 0, 0, 0, err
	}
	name, off, lineNo, version = files[i].name, s.segOff, s.segLine-1, s.segVersion
	for j := i - 1; j >= 0 && off == 0; j-- {
		prev, err := r.scan(files[j])
		if err != nil {
			return "", 0, 0, 0, err
		}
		if prev.lines == 0 || prev.bad != nil || prev.segVersion >= version || prev.last+1 < version {
			break
		}
		name, off, lineNo, version = files[j].name, prev.segOff, prev.segLine-1, prev.segVersion
	}
	return name, off, lineNo, version, nil
}

// candidates lists the changelog files that hold at least one whole line, oldest first.
func (r *reader) candidates() ([]candidate, error) {
	logs, err := listLogs(r.dir, r.kind)
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, l := range logs {
		v, ok, err := firstVersion(l.path(r.dir))
		if errors.Is(err, os.ErrNotExist) {
			continue // rotated between listing and opening
		}
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, candidate{logFile: l, first: v})
		}
	}
	return out, nil
}

// scan reads a whole file looking for Next, reusing the result while the file is unchanged.
func (r *reader) scan(c candidate) (fileScan, error) {
	p := c.path(r.dir)
	fi, err := os.Stat(p)
	if err != nil {
		return fileScan{}, fmt.Errorf("stat %s: %w", p, err)
	}
	id := statID(fi)
	if cs, ok := r.scans[c.name]; ok && cs.id == id && cs.want == r.pos.Next && cs.prevHash == r.pos.PrevHash {
		return cs.scan, nil
	}
	s, err := scanFile(p, r.pos.Next, r.pos.PrevHash)
	if err != nil {
		return s, err
	}
	r.scans[c.name] = cachedScan{id: id, want: r.pos.Next, prevHash: r.pos.PrevHash, scan: s}
	return s, nil
}

// open makes name the followed file, positioned at off, which is after lines lines.
func (r *reader) open(name string, off int64, lines int) error {
	r.Close()
	p := r.dirPath(name)
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("open changelog: %w", err)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("seek %s to %d: %w", p, off, err)
	}
	r.f, r.name, r.lineNo = f, name, lines
	r.buf, r.start = r.buf[:0], 0
	return nil
}

func (r *reader) dirPath(name string) string { return logFile{name: name}.path(r.dir) }
