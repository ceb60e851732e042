package chunklock

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/durable"
)

// A master that dies holding lines nobody else got (a power-off, a partition: MooseFS answers a
// client before its metaloggers have the line) may have allocated chunk ids that the promoted
// master does not know, and written data under them to chunkservers. The new master would
// allocate the same ids again for new files, and a chunkserver still holding the old chunk
// (it reports it only when it registers again) would serve its data under the new file: a
// file written after the failover reads back another file's bytes (seen in the lab, MooseFS
// 3.0.117, a master cut off from NATS and then from the standby). A NEXTCHUNKID line after
// everything the new master replays moves its next chunk id past any id the lost lines can
// have used, as mfsmaster itself does for a chunk a chunkserver reports that it does not know
// (chunks.c chunk_server_has_chunk). Replayed by restore.c do_nextchunkid →
// chunk_mr_nextchunkid (3.0.117 and 4.59.2), which needs the new id above the current one,
// else mfsmaster -a stops: hence the bound below, never an estimate.

// chunkWindow is how far above the next chunk id a chunk id in a line can be: a CHUNKADD of an
// unknown chunk is refused beyond nextchunkid + 1e9 (chunk_mr_chunkadd).
const chunkWindow = 1_000_000_000

// ChunkSkip is how far past the replayed lines' next chunk id the promoted master starts: far
// more chunks than a master creates in the seconds a failover takes back.
const ChunkSkip = 1_000_000

// SeedNextChunk sets the next chunk id before the first line (Chunks.Next of the metadata the
// lines follow).
func (t *Tracker) SeedNextChunk(next uint64) { t.bound = max(t.bound, next) }

// boundChunks raises t.bound past every number of l that can be a chunk id: any argument or
// result within chunkWindow of the bound (a chunk a line allocates is the next id, one it
// adds is at most chunkWindow above it), and NEXTCHUNKID's argument. It over-counts (an inode
// or a length may pass for a chunk id), never under-counts: every line that changes the next
// chunk id names the chunk.
func (t *Tracker) boundChunks(l changelog.Line) {
	raise := func(s string) {
		x, err := strconv.ParseUint(s, 10, 64)
		if err != nil || x == ^uint64(0) {
			return
		}
		if l.Op == "NEXTCHUNKID" {
			t.bound = max(t.bound, x)
		} else if x < t.bound+chunkWindow {
			t.bound = max(t.bound, x+1)
		}
	}
	for _, a := range l.Args {
		raise(a)
	}
	if l.HasResult {
		raise(l.Result)
	}
}

// NextChunkBound is at least the next chunk id a master has after the lines added (and the
// seed): the id a NEXTCHUNKID line must exceed.
func (t *Tracker) NextChunkBound() uint64 { return t.bound }

// SkipChunks appends "NEXTCHUNKID(NextChunkBound()+ChunkSkip)" after the last line t read from
// the changelog file at path (ErrChanged if it is not the file's last line), or makes path
// with that one line at version next when t read no line and path does not exist. It returns
// the new next chunk id. The write is atomic (temp file, fsync, rename).
func (t *Tracker) SkipChunks(path string, next uint64, now time.Time) (uint64, error) {
	old, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err) && t.last == 0:
		old = nil
	case err != nil:
		return 0, fmt.Errorf("skip chunk ids: %w", err)
	default:
		if last := lastVersion(old); last != t.last {
			return 0, fmt.Errorf("skip chunk ids: %s ends with version %d, not %d as read: %w", path, last, t.last, ErrChanged)
		}
		if t.last != 0 {
			next = t.last + 1
		}
	}
	id := t.bound + ChunkSkip
	line := changelog.Line{Version: next, Time: uint32(now.Unix()), Op: "NEXTCHUNKID", Args: []string{strconv.FormatUint(id, 10)}}
	b := append(line.AppendFormat(old), '\n')
	if old == nil {
		err = durable.WriteFile(path, b, 0o644)
	} else {
		err = writeAtomic(path, b)
	}
	if err != nil {
		return 0, fmt.Errorf("skip chunk ids in %s: %w", path, err)
	}
	t.last = next
	t.bound = id
	return id, nil
}
