package chunklock

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// MetadataLocks returns the version of a metadata file and the chunk locks it keeps that may
// still be write locks at now (its CHNK section: each chunk's lockedto, the time its lock
// expires), as Locks with Time = lockedto - LockTimeout so that Held's rule applies; Inode and
// Version are 0 (not stored), Op is "metadata". Formats: CHNK 1.0 (16-byte records), 1.1 (17:
// + flags, MooseFS 3.0.117) and 1.2 (18: + storage-class pairs, 4.x), read as mfsmaster's
// chunks.c chunk_load reads them.
//
// Why: a standby that folded the line that locked a chunk (a resynchronization, or a fold just
// before the master died) hands over metadata holding the lock with no line to show it, and
// the client retrying that write waits out the lock (measured: 116 s after a promotion that
// had resynchronized).
//
// Which: a lock is kept when lockedto is not before now and at most LockTimeout + ClockSlack
// after it. Others are not write locks that can still hold:
//   - an expired one, and 4.x never clears lockedto (an unlock sets it to its time minus one,
//     chunk_unlock in 4.59.2 chunks.c): every chunk ever written keeps a past value, 12.4
//     million of 12.4 million chunks in the 10M-inode tree, which cost a promotion seconds
//     and gigabytes when they were all returned;
//   - a chunk a chunkserver reported that the master did not know, kept "for future deletion"
//     for UNUSED_DELETE_TIMEOUT (7 days; CHUNKADD, both releases): MooseFS keeping data it
//     cannot place, after a metadata restore for example. Unlocked, it would be deleted at
//     once.
func MetadataLocks(path string, now time.Time) (version uint64, locks []Lock, err error) {
	c, err := MetadataChunks(path, now)
	return c.Version, c.Locks, err
}

// ClockSlack is how far ahead of this host's clock the clock of the master that wrote a
// metadata file may run for its write locks to be recognized (see MetadataLocks).
const ClockSlack = time.Minute

// Chunks is what MetadataChunks reads from a metadata file.
type Chunks struct {
	Version uint64 // the metadata's version: that of the line that follows it
	Next    uint64 // the next chunk id the master allocates (CHNK's nextchunkid; 1 without chunks)
	Locks   []Lock // as MetadataLocks
}

// MetadataChunks is MetadataLocks with the next chunk id, in one pass.
func MetadataChunks(path string, now time.Time) (Chunks, error) {
	version, next, locks, err := metadataChunks(path, now)
	return Chunks{Version: version, Next: next, Locks: locks}, err
}

func metadataChunks(path string, now time.Time) (version, next uint64, locks []Lock, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("chunk locks: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	head := make([]byte, 24)
	if _, err := io.ReadFull(r, head[:8]); err != nil {
		return 0, 0, nil, fmt.Errorf("chunk locks: %s: %w", path, err)
	}
	switch string(head[:8]) {
	case "MFSM NEW":
		return 1, 1, nil, nil
	case "MFSM 2.0":
	default:
		return 0, 0, nil, fmt.Errorf("chunk locks: %s: signature %q, want \"MFSM 2.0\"", path, head[:8])
	}
	if _, err := io.ReadFull(r, head[8:]); err != nil {
		return 0, 0, nil, fmt.Errorf("chunk locks: %s: header: %w", path, err)
	}
	version = binary.BigEndian.Uint64(head[8:])
	hdr := make([]byte, 16)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return 0, 0, nil, fmt.Errorf("chunk locks: %s: section header: %w", path, err)
		}
		if string(hdr) == "[MFS EOF MARKER]" {
			return version, 1, nil, nil // no CHNK section: no chunk
		}
		n := binary.BigEndian.Uint64(hdr[8:])
		if string(hdr[:4]) == "CHNK" {
			if hdr[4] != ' ' || hdr[5] != '1' || hdr[6] != '.' || hdr[7] < '0' || hdr[7] > '2' {
				return 0, 0, nil, fmt.Errorf("chunk locks: %s: section %q: want CHNK 1.0, 1.1 or 1.2", path, hdr[:8])
			}
			from := uint32(max(now.Unix(), 0))
			next, locks, err := chnkLocks(io.LimitReader(r, int64(n)), hdr[7]-'0', from, from+uint32((LockTimeout+ClockSlack)/time.Second))
			if err != nil {
				return 0, 0, nil, fmt.Errorf("chunk locks: %s: %s: %w", path, hdr[:8], err)
			}
			return version, next, locks, nil
		}
		if _, err := r.Discard(int(n)); err != nil {
			return 0, 0, nil, fmt.Errorf("chunk locks: %s: section %q: %w", path, hdr[:8], err)
		}
	}
}

// chnkLocks reads a CHNK 1.minor section's body: the next chunk id and the locks whose
// lockedto is within [from, to].
func chnkLocks(r io.Reader, minor byte, from, to uint32) (next uint64, locks []Lock, err error) {
	var hdr [8]byte // nextchunkid
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	next = binary.BigEndian.Uint64(hdr[:])
	size := [3]int{16, 17, 18}[minor]
	rec := make([]byte, size)
	var dyn [4*0x1ff + 1]byte
	var out []Lock
	for {
		if _, err := io.ReadFull(r, rec); err != nil {
			return 0, nil, fmt.Errorf("chunk record: %w", err)
		}
		chunk := binary.BigEndian.Uint64(rec)
		lockedto := binary.BigEndian.Uint32(rec[12:])
		var flags, pairs uint16
		if minor >= 1 {
			flags = uint16(rec[16])
		}
		if minor >= 2 {
			pairs = uint16(rec[17])
		}
		if flags&0x80 != 0 {
			pairs |= 0x100
		}
		if pairs > 0 {
			n := 4 * int(pairs)
			if pairs > 1 {
				n++
			}
			if _, err := io.ReadFull(r, dyn[:n]); err != nil {
				return 0, nil, fmt.Errorf("chunk %d: storage classes: %w", chunk, err)
			}
		}
		if chunk == 0 {
			if binary.BigEndian.Uint32(rec[8:]) != 0 || lockedto != 0 {
				return 0, nil, errors.New("wrong ending: chunk zero with a version or a lock")
			}
			return next, out, nil
		}
		if lockedto >= from && lockedto <= to && lockedto > uint32(LockTimeout/time.Second) {
			out = append(out, Lock{Chunk: chunk, Time: lockedto - uint32(LockTimeout/time.Second), Op: "metadata"})
		}
	}
}
