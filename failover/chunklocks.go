package failover

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/mfsha/mfsha/internal/chunklock"
	"github.com/mfsha/mfsha/internal/durable"
)

// releaseChunkLocks appends an UNLOCK line to the handed-over changelog.1.mfs in dataPath for
// every chunk left locked by what the promoted master is about to load: the locks its
// metadata.mfs keeps (a WRITE or TRUNC folded in by the standby), then those its lines take and
// do not release (a WRITE or TRUNC of the last LOCKTIMEOUT without its UNLOCK). Without
// changelog.1.mfs, the UNLOCK lines make a new one, from the metadata's version on. It returns
// how many lines it appended.
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
// A file it cannot read (a malformed line, a hole, a metadata file it does not understand) is
// logged as an error and left alone: the promotion goes on (mfsmaster -a and the version check
// judge the files), at worst a writer waits out one lock. A failed write ends the promotion.
//
// With skipChunks, it then appends a NEXTCHUNKID line past every chunk id the old master may
// have used in lines nobody got (see chunklock.ChunkSkip); the count includes it.
func releaseChunkLocks(dataPath string, now time.Time, skipChunks bool, log *slog.Logger) (uint64, error) {
	var tr chunklock.Tracker
	meta, err := chunklock.MetadataChunks(filepath.Join(dataPath, "metadata.mfs"))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Error("chunk locks kept in the handed-over metadata are not released: a writer may wait up to 120 s", "err", err)
		}
		meta = chunklock.Chunks{}
		skipChunks = false // no bound to start from: a NEXTCHUNKID too low would stop mfsmaster -a
	}
	tr.Seed(meta.Locks)
	tr.SeedNextChunk(meta.Next)
	path := filepath.Join(dataPath, "changelog.1.mfs")
	var locks []chunklock.Lock
	switch err := tr.ScanFile(path); {
	case errors.Is(err, fs.ErrNotExist):
		if locks = tr.Held(now); len(locks) > 0 && meta.Version != 0 {
			b := chunklock.AppendUnlocks(nil, locks, meta.Version, now)
			if err := durable.WriteFile(path, b, 0o644); err != nil {
				return 0, fmt.Errorf("chunk locks: %w", err)
			}
			if err := chownLike(path, dataPath); err != nil {
				return 0, fmt.Errorf("chunk locks: %w", err)
			}
			if err := tr.ScanFile(path); err != nil {
				return 0, err
			}
		} else {
			locks = nil
		}
	case err != nil:
		log.Error("chunk locks the old master left are not released, nor its chunk ids skipped: a writer may wait up to 120 s", "err", err)
		return 0, nil
	default:
		if locks, err = tr.Release(path, now); err != nil {
			return 0, err
		}
	}
	for _, l := range locks {
		log.Info("released a chunk lock the old master left held", "chunk", l.Chunk, "inode", l.Inode,
			"locked_by", l.Op, "line", l.Version, "age", now.Sub(time.Unix(int64(l.Time), 0)).Round(time.Second))
	}
	added := uint64(len(locks))
	if skipChunks && meta.Version != 0 {
		id, err := tr.SkipChunks(path, meta.Version, now)
		if err != nil {
			return 0, err
		}
		if err := chownLike(path, dataPath); err != nil {
			return 0, fmt.Errorf("skip chunk ids: %w", err)
		}
		added++
		log.Info("the old master's lease expired: chunk ids it may have used unseen are skipped", "next_chunk_id", id)
	}
	return added, nil
}
