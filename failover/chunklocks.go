package failover

import (
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/mfsha/mfsha/internal/chunklock"
)

// releaseChunkLocks appends an UNLOCK line to the handed-over changelog.1.mfs in dataPath for
// every chunk its lines leave locked (a WRITE or TRUNC of the last LOCKTIMEOUT without its
// UNLOCK), and returns how many lines it appended; none without that file.
//
// Why (failover/DESIGN.md, "Chunk locks at promotion"): the standby has every line the old
// master sent, so when the old master died between logging a WRITE and answering it, the new
// master replays the lock with the line's timestamp, and the client, retrying the WRITE_CHUNK
// it never got an answer to, waits out the 120 s lock. Safety: the old master is fenced, so no
// client can finish that write through it; a client that had the answer sends
// WRITE_CHUNK_END, which unlocks regardless of the lock; the UNLOCK only does now what the
// lock's expiry would do later. A chunk deleted afterwards (CHUNKDEL) is not unlocked: the
// replay would fail on it.
//
// Limit: a lock taken by a line already folded into the handed-over metadata.mfs (its CHNK
// section keeps a lock still in force at the fold) is not seen here; the standby folds well
// behind the live lines, so the dangling WRITE of a kill is in changelog.1.mfs.
//
// A file it cannot read as a changelog (a malformed line, a hole) is logged as an error and left
// alone: the promotion goes on (mfsmaster -a and the version check judge the file), at worst a
// writer waits out one lock. A failed write of the file ends the promotion.
func releaseChunkLocks(dataPath string, now time.Time, log *slog.Logger) (uint64, error) {
	path := filepath.Join(dataPath, "changelog.1.mfs")
	var tr chunklock.Tracker
	if err := tr.ScanFile(path); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		log.Error("chunk locks the old master left are not released: a writer may wait up to 120 s", "err", err)
		return 0, nil
	}
	locks, err := tr.Release(path, now)
	if err != nil {
		return 0, err
	}
	for _, l := range locks {
		log.Info("released a chunk lock the old master left held", "chunk", l.Chunk, "inode", l.Inode,
			"locked_by", l.Op, "line", l.Version, "age", now.Sub(time.Unix(int64(l.Time), 0)).Round(time.Second))
	}
	return uint64(len(locks)), nil
}
