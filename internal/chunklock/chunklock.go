// Package chunklock finds the chunk locks that a MooseFS changelog leaves held, and writes the
// UNLOCK lines that release them.
//
// A master locks a chunk for LockTimeout while one client writes it: the WRITE (or TRUNC) line
// that gave the client the chunk locks it, the client's WRITE_CHUNK_END logs UNLOCK, a failed
// operation logs ROLLBACK. A master started on lines that end between the two (a promoted
// standby, which receives every line the old master sent) replays the lock with the line's own
// timestamp, and a client that never got the answer to its WRITE_CHUNK, retrying it, waits
// until the lock expires: two minutes. Appending UNLOCK for those chunks before the master
// loads the lines releases them as the client's own WRITE_CHUNK_END would have. See
// failover/DESIGN.md, "Chunk locks at promotion", for the source references and the safety
// argument.
package chunklock

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/mfsha/mfsha/internal/changelog"
)

// LockTimeout is how long a chunk stays locked after the line that locked it (LOCKTIMEOUT in
// mfsmaster/chunks.c, 120 s in 3.0.117 and 4.59.2).
const LockTimeout = 120 * time.Second

// Lock is a chunk locked by a line that no later line released.
type Lock struct {
	Chunk   uint64
	Inode   uint32 // the file the lock was taken for (0 when only the metadata shows the lock)
	Index   uint32 // the chunk's index in that file
	Version uint64 // the version of the locking line
	Time    uint32 // its timestamp: the lock holds until Time + LockTimeout
	Op      string // WRITE or TRUNC
}

// Tracker follows changelog lines in version order and keeps the chunk locks they leave held.
// The zero value is ready to use. A Tracker is not safe for concurrent use.
type Tracker struct {
	held  map[uint64]Lock
	last  uint64 // version of the last line added, 0 before the first
	bound uint64 // at least the next chunk id after the lines added (see boundChunks)
}

// Add reads one line (without its '\n'). Only the lines that lock or release a chunk matter:
//
//	WRITE(inode,indx[,opflag[,canmodtime]]):chunk   locks chunk (mfsmaster/filesystem.c fs_writechunk)
//	TRUNC(inode,indx):chunk                         locks chunk (fs_try_setlength / chunk_multi_truncate)
//	UNLOCK(chunk)                                   releases it (fs_writeend, fs_end_setlength)
//	ROLLBACK(inode,indx,prevchunk,chunk)            releases chunk (fs_rollback)
//	CHUNKDEL(chunk,version)                         deletes it: no UNLOCK may follow
//
// Every line is checked (changelog.Parse); a malformed line, or a version that does not follow
// the previous line's, is an error naming the version.
func (t *Tracker) Add(line []byte) error {
	l, err := changelog.Parse(line)
	if err != nil {
		return fmt.Errorf("changelog line %.40q: %w", line, err)
	}
	return t.AddLine(l)
}

// AddLine is Add for a line already parsed.
func (t *Tracker) AddLine(l changelog.Line) error {
	if t.last != 0 && l.Version != t.last+1 {
		return fmt.Errorf("changelog line %d after %d: versions not contiguous", l.Version, t.last)
	}
	t.last = l.Version
	t.boundChunks(l)
	bad := func(what string) error {
		return fmt.Errorf("changelog line %d: %s %s: %s", l.Version, l.Op, l.Args, what)
	}
	switch l.Op {
	case "WRITE", "TRUNC":
		if len(l.Args) < 2 || !l.HasResult {
			return bad("want inode, index and a resulting chunk")
		}
		chunk, err := strconv.ParseUint(l.Result, 10, 64)
		if err != nil {
			return bad("result is not a chunk id")
		}
		inode, err := strconv.ParseUint(l.Args[0], 10, 32)
		if err != nil {
			return bad("first argument is not an inode")
		}
		indx, err := strconv.ParseUint(l.Args[1], 10, 32)
		if err != nil {
			return bad("second argument is not a chunk index")
		}
		if t.held == nil {
			t.held = map[uint64]Lock{}
		}
		t.held[chunk] = Lock{Chunk: chunk, Inode: uint32(inode), Index: uint32(indx), Version: l.Version, Time: l.Time, Op: l.Op}
	case "UNLOCK", "CHUNKDEL", "ROLLBACK":
		at := 0 // UNLOCK(chunk), CHUNKDEL(chunk,version)
		if l.Op == "ROLLBACK" {
			at = 3 // ROLLBACK(inode,indx,prevchunk,chunk)
		}
		if len(l.Args) <= at {
			return bad("too few arguments")
		}
		chunk, err := strconv.ParseUint(l.Args[at], 10, 64)
		if err != nil {
			return bad("not a chunk id")
		}
		delete(t.held, chunk)
	}
	return nil
}

// Seed adds locks held before the first line (MetadataLocks: those of the metadata the lines
// follow). A later line releases or replaces them as it would a line's lock.
func (t *Tracker) Seed(locks []Lock) {
	if t.held == nil {
		t.held = map[uint64]Lock{}
	}
	for _, l := range locks {
		t.held[l.Chunk] = l
	}
}

// Last returns the version of the last line added, 0 before the first.
func (t *Tracker) Last() uint64 { return t.last }

// Held returns the locks still in force at now (Time + LockTimeout not before now, in whole
// seconds as mfsmaster compares them), ordered by the version that took them. Locks older
// than that have expired on their own and need no UNLOCK.
func (t *Tracker) Held(now time.Time) []Lock {
	var out []Lock
	for _, l := range t.held {
		if int64(l.Time)+int64(LockTimeout/time.Second) >= now.Unix() {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b Lock) int { return cmp.Compare(a.Version, b.Version) })
	return out
}

// AppendUnlocks appends to dst one line "VERSION: TS|UNLOCK(chunk)\n" per lock, with versions
// from next on and TS now, as mfsmaster would log them. Replayed, each releases its chunk
// (restore.c do_unlock → chunk_mr_unlock) and takes one version.
func AppendUnlocks(dst []byte, locks []Lock, next uint64, now time.Time) []byte {
	for i, l := range locks {
		line := changelog.Line{Version: next + uint64(i), Time: uint32(now.Unix()), Op: "UNLOCK",
			Args: []string{strconv.FormatUint(l.Chunk, 10)}}
		dst = line.AppendFormat(dst)
		dst = append(dst, '\n')
	}
	return dst
}
