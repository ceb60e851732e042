package shipper

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/stream"
)

// Position is where the history stands: the next line to ship and the one before it. It is
// derived from the stream's last acknowledged batch, never from local state alone.
type Position struct {
	Timeline uint64 // current timeline; 0 before anything was shipped
	Next     uint64 // version of the next line; 0 before anything was shipped
	PrevHash uint64 // stream.LineHash of line Next-1; 0 if unknown
}

// Line is one whole changelog line handed out by the reader. Raw excludes the '\n' and is
// valid only until the emit callback returns.
type Line struct {
	Timeline uint64
	Parent   uint64 // on the first line of a forked timeline: the timeline it forked from
	Bridged  uint64 // on a line after a hole bridged by a snapshot: the first missing version
	Version  uint64
	Time     uint32
	Raw      []byte
}

// reader follows the changelog history of one data directory by version. It is not safe for
// concurrent use.
//
// It keeps one file open and reads whole lines from it. When that file is no longer the live
// file (rotated by the hourly rename, or replaced under the same name) and has been read to
// its end, it finds the file that holds the next version. A version that goes backwards starts
// a new timeline; a version that jumps forward, or a next version that no file holds while the
// files hold later ones, is a gap: an error, never a skip.
type reader struct {
	dir  string
	kind Kind
	pos  Position

	f      *os.File
	name   string
	lineNo int // lines of f consumed so far
	buf    []byte
	start  int // start of unconsumed bytes in buf
	// prevRaw is the last line consumed by the current consume call; its hash becomes PrevHash.
	prevRaw []byte
	// exclude is a file not to relocate into (the one just found to jump over a version).
	exclude string

	// scans caches fileScan results of files that are not live, keyed by name and identity.
	scans map[string]cachedScan
	// BytesRead counts bytes read from changelog files while following (not scanning).
	bytesRead int64
}

type cachedScan struct {
	id       fileID
	want     uint64
	prevHash uint64
	scan     fileScan
}

type fileID struct {
	ino, size int64
	mtime     int64
}

func statID(fi os.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := sysIno(fi); ok {
		id.ino = st
	}
	return id
}

func newReader(dir string, kind Kind, pos Position) *reader {
	return &reader{dir: dir, kind: kind, pos: pos, buf: make([]byte, 0, 4<<20), scans: map[string]cachedScan{}}
}

// Close releases the open file.
func (r *reader) Close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// Read hands every whole line available now, in order, to emit, and returns when it has caught
// up with the files (nil error) or on an error. It can be called again when files change.
func (r *reader) Read(emit func(Line) error) error {
	for {
		if r.f == nil {
			ok, err := r.locate()
			if err != nil || !ok {
				return err
			}
		}
		n, err := r.fill()
		if err != nil {
			return err
		}
		if err := r.consume(emit); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		// At the end of the open file: is more coming into it?
		live, err := r.isLive()
		if err != nil {
			return err
		}
		if live {
			return nil
		}
		// Rotated or replaced: whatever was written before the rename is there now.
		for {
			n, err := r.fill()
			if err != nil {
				return err
			}
			if err := r.consume(emit); err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
		if r.start < len(r.buf) {
			return fmt.Errorf("%s line %d: file ends in a partial line and is no longer written (rotated or replaced)", r.path(), r.lineNo+1)
		}
		r.Close()
	}
}

func (r *reader) path() string { return filepath.Join(r.dir, r.name) }

// fill appends what the open file has beyond what was read.
func (r *reader) fill() (int, error) {
	if r.start > 0 && r.start == len(r.buf) {
		r.buf, r.start = r.buf[:0], 0
	} else if r.start > cap(r.buf)/2 {
		n := copy(r.buf, r.buf[r.start:])
		r.buf, r.start = r.buf[:n], 0
	}
	if len(r.buf) == cap(r.buf) {
		if r.start == 0 {
			return 0, fmt.Errorf("%s line %d: longer than %d bytes", r.path(), r.lineNo+1, cap(r.buf))
		}
		n := copy(r.buf, r.buf[r.start:])
		r.buf, r.start = r.buf[:n], 0
	}
	n, err := r.f.Read(r.buf[len(r.buf):cap(r.buf)])
	r.buf = r.buf[:len(r.buf)+n]
	r.bytesRead += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("read %s: %w", r.path(), err)
	}
	return n, nil
}

// consume hands the whole lines in the buffer to emit, checking the version sequence.
func (r *reader) consume(emit func(Line) error) error {
	// Only the last line's hash is ever needed: compute it once, on the way out.
	defer r.settleHash()
	for {
		i := bytes.IndexByte(r.buf[r.start:], '\n')
		if i > changelog.MaxLineBytes || (i < 0 && len(r.buf)-r.start > changelog.MaxLineBytes) {
			// Every line before it has been emitted; the caller ships them, then stops.
			return tooLong(r.path(), r.lineNo+1)
		}
		if i < 0 {
			return nil
		}
		raw := r.buf[r.start : r.start+i]
		// The full check, not just the version: a line that mfsmaster would not fold must
		// not reach the stream, where every standby and restore would stop on it. The lines
		// before it were emitted and are published before the shipper stops with this error;
		// nothing after it can be shipped, as after a gap.
		if err := changelog.Check(raw); err != nil {
			return &UnshippableError{File: r.path(), Line: r.lineNo + 1, Err: err}
		}
		v, ts, err := changelog.ParseVersion(raw)
		if err != nil {
			return &UnshippableError{File: r.path(), Line: r.lineNo + 1, Err: err}
		}
		l := Line{Timeline: r.pos.Timeline, Version: v, Time: ts, Raw: raw}
		switch {
		case r.pos.Next == 0 || v < r.pos.Next:
			// The first line ever, or the master went back to older metadata: a new timeline.
			l.Parent = r.pos.Timeline
			r.pos.Timeline++
			l.Timeline = r.pos.Timeline
		case v > r.pos.Next && r.bridged(v):
			// MooseFS skipped versions (it does across a clean stop); the metadata file of
			// exactly version v holds what they changed.
			l.Bridged = r.pos.Next
		case v > r.pos.Next:
			gap := &GapError{Timeline: r.pos.Timeline, Want: r.pos.Next,
				Detail: fmt.Sprintf("%s line %d jumps to version %d", r.path(), r.lineNo+1, v)}
			r.settleHash()
			return r.relocateAfterGap(gap)
		}
		if err := emit(l); err != nil {
			return err
		}
		r.pos.Next = v + 1
		r.lineNo++
		r.start += i + 1
		r.prevRaw = raw
	}
}

// bridged reports whether a complete metadata file in the directory has exactly version v.
func (r *reader) bridged(v uint64) bool {
	for _, n := range r.kind.SnapshotNames() {
		if h, err := metafile.Check(filepath.Join(r.dir, n)); err == nil && h.Version == v {
			return true
		}
	}
	return false
}

// settleHash sets PrevHash from the last line consumed, while the buffer still holds it.
func (r *reader) settleHash() {
	if r.prevRaw != nil {
		r.pos.PrevHash = stream.LineHash(r.prevRaw)
		r.prevRaw = nil
	}
}

// relocateAfterGap tries the other files for the missing version (a metalogger's overlapping
// files can fill it); if none has it the gap stands.
func (r *reader) relocateAfterGap(gap *GapError) error {
	r.exclude = r.name
	defer func() { r.exclude = "" }()
	r.Close()
	ok, err := r.locate()
	if err != nil {
		if errors.Is(err, ErrGap) {
			return gap
		}
		return err
	}
	if !ok {
		return gap
	}
	return nil
}

// isLive reports whether the open file is still the one MooseFS appends to.
func (r *reader) isLive() (bool, error) {
	if r.name != r.kind.liveName() {
		return false, nil
	}
	live, err := os.Stat(r.path())
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // rotated; the next file is created at the next change
	}
	if err != nil {
		return false, err
	}
	mine, err := r.f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", r.path(), err)
	}
	return os.SameFile(live, mine), nil
}
