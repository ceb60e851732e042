package failover

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mfsha/mfsha/internal/changelog"
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
// have used in lines nobody got (see chunklock.ChunkSkip); the count includes it. It also
// returns the locks released: their chunks may be lost (see repairLost).
func releaseChunkLocks(dataPath string, now time.Time, skipChunks bool, log *slog.Logger) (uint64, []chunklock.Lock, error) {
	var tr chunklock.Tracker
	meta, err := chunklock.MetadataChunks(filepath.Join(dataPath, "metadata.mfs"), now)
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
				return 0, nil, fmt.Errorf("chunk locks: %w", err)
			}
			if err := chownLike(path, dataPath); err != nil {
				return 0, nil, fmt.Errorf("chunk locks: %w", err)
			}
			if err := tr.ScanFile(path); err != nil {
				return 0, nil, err
			}
		} else {
			locks = nil
		}
	case err != nil:
		log.Error("chunk locks the old master left are not released, nor its chunk ids skipped: a writer may wait up to 120 s", "err", err)
		return 0, nil, nil
	default:
		if locks, err = tr.Release(path, now); err != nil {
			return 0, nil, err
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
			return 0, nil, err
		}
		if err := chownLike(path, dataPath); err != nil {
			return 0, nil, fmt.Errorf("skip chunk ids: %w", err)
		}
		added++
		log.Info("the old master's lease expired: chunk ids it may have used unseen are skipped", "next_chunk_id", id)
	}
	return added, locks, nil
}

// releaseLocalChunkLocks is releaseChunkLocks for a master restarted on its own files (boot,
// retake: takeOver without a restore). mfsmaster -a loads the newest metadata file of dataPath
// (metadata.mfs or metadata.mfs.back) and replays the changelog.N.mfs lines from its version
// on. The tracker starts from the metadata's locks (CHNK lockedto) and reads those lines; the
// locks they leave held at now get an UNLOCK line each, appended after the newest line of the
// newest changelog file (changelog.0.mfs, or the lowest N holding a line) by an atomic rewrite,
// owned like dataPath; it returns those locks too (see repairLost). last is the version of that newest line (0 without any: the UNLOCK lines
// then make changelog.0.mfs from the metadata's version). It returns how many lines it
// appended and the version of the first one; the master must then serve at least
// first+added. No NEXTCHUNKID (promotion adds one after an unplanned failover): the files are
// the master's own and no other master served after them, as in any MooseFS restart.
//
// Why: when the old mfsmaster died (SIGKILL at a fence, a crash) between logging a
// WRITE(inode,indx,...):chunk and the client's UNLOCK, the restarted master replays the lock
// with the line's timestamp, and the client retrying its WRITE_CHUNK waits out LOCKTIMEOUT
// (seen: a writer stuck 2-4 min after a retake; the metalogger had WRITE(606,0,1,0):604 at
// 3025 and no UNLOCK). A clean stop keeps such a lock in metadata.mfs just the same.
//
// Safety (as at promotion, failover/DESIGN.md "Chunk locks at promotion"): the mfsmaster
// process that granted the lock is dead (fenced: stopped, else SIGKILLed; or StopForeign),
// and nothing else serves these files, so no client can finish that write through it; a
// client that had the answer sends WRITE_CHUNK_END, which unlocks regardless of the lock; the
// UNLOCK only does now what the lock's expiry would do later. The added lines are ordinary
// lines: the shipper ships them, so the stream and any restore agree with what the master
// served. Files it cannot read (a gap, a malformed line, no whole metadata) are logged and
// left alone: mfsmaster -a and the version check judge them, at worst a writer waits out one
// lock. A failed write ends the take-over.
func releaseLocalChunkLocks(dataPath string, last uint64, now time.Time, log *slog.Logger) (first, added uint64, released []chunklock.Lock, err error) {
	skip := func(msg string, err error) (uint64, uint64, []chunklock.Lock, error) {
		log.Error("chunk locks the local files leave held are not released ("+msg+"): a writer may wait up to 120 s", "err", err)
		return 0, 0, nil, nil
	}
	mf, err := newestMetadata(dataPath)
	if err != nil {
		return skip("no metadata", err)
	}
	meta, err := chunklock.MetadataChunks(mf.path, now)
	if err != nil {
		return skip("metadata", err)
	}
	from := meta.Version // the first line mfsmaster replays
	if last != 0 && last+1 < from {
		return skip("changelog", fmt.Errorf("the newest line %d is older than %s (version %d)", last, mf.path, from))
	}
	files, err := localChangelogs(dataPath)
	if err != nil {
		return skip("changelog", err)
	}
	// Newest first: the files holding lines from `from` on, down to the one that starts at or
	// before it; the first holding a line is where the UNLOCK lines go.
	var need []string
	target := ""
	for _, p := range files {
		v, ok, err := firstVersion(p)
		if err != nil {
			return skip("changelog", err)
		}
		if !ok {
			continue
		}
		if target == "" {
			target = p
		}
		need = append(need, p)
		if v <= from {
			break
		}
	}
	var tr chunklock.Tracker
	tr.Seed(meta.Locks)
	for i := len(need) - 1; i >= 0; i-- {
		if err := scanFrom(&tr, need[i], from); err != nil {
			return skip("changelog", err)
		}
	}
	next := from
	if tr.Last() != 0 {
		next = tr.Last() + 1
	}
	if last != 0 && next != last+1 {
		return skip("changelog", fmt.Errorf("the lines from the metadata's version %d end at %d, the newest file at %d", from, next-1, last))
	}
	if target == "" {
		target = filepath.Join(dataPath, "changelog.0.mfs")
	}
	locks, err := tr.ReleaseAt(target, next, now)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("release the chunk locks the local files leave held: %w", err)
	}
	if len(locks) == 0 {
		return next, 0, nil, nil
	}
	if err := chownLike(target, dataPath); err != nil {
		return 0, 0, nil, fmt.Errorf("chunk locks: %w", err)
	}
	for _, l := range locks {
		log.Info("released a chunk lock the stopped master left held", "chunk", l.Chunk, "inode", l.Inode,
			"locked_by", l.Op, "line", l.Version, "age", now.Sub(time.Unix(int64(l.Time), 0)).Round(time.Second), "file", target)
	}
	return next, uint64(len(locks)), locks, nil
}

// localChangelogs lists dataPath's changelog.N.mfs files, newest (lowest N) first.
func localChangelogs(dataPath string) ([]string, error) {
	ents, err := os.ReadDir(dataPath)
	if err != nil {
		return nil, err
	}
	type file struct {
		n    int
		path string
	}
	var logs []file
	for _, e := range ents {
		if !changelogRE.MatchString(e.Name()) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(e.Name(), "changelog."), ".mfs"))
		if err != nil {
			continue
		}
		logs = append(logs, file{n, filepath.Join(dataPath, e.Name())})
	}
	slices.SortFunc(logs, func(a, b file) int { return cmp.Compare(a.n, b.n) })
	out := make([]string, len(logs))
	for i, f := range logs {
		out[i] = f.path
	}
	return out, nil
}

// firstVersion is the version of the first line of a changelog file, ok false when it has none.
func firstVersion(path string) (v uint64, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	s := changelog.NewScanner(f, filepath.Base(path))
	if s.Scan() {
		return s.Line().Version, true, nil
	}
	return 0, false, s.Err()
}

// scanFrom adds to tr the lines of the changelog file at path from version from on, skipping
// lines tr already has (files may overlap); the first line added must be from itself.
func scanFrom(tr *chunklock.Tracker, path string, from uint64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	s := changelog.NewScanner(f, filepath.Base(path))
	for s.Scan() {
		l := s.Line()
		if l.Version < from || (tr.Last() != 0 && l.Version <= tr.Last()) {
			continue
		}
		if tr.Last() == 0 && l.Version != from {
			return fmt.Errorf("%s: line %d, but the metadata is at version %d: lines missing", path, l.Version, from)
		}
		if err := tr.AddLine(l); err != nil {
			return fmt.Errorf("%s line %d: %w", path, s.LineNumber(), err)
		}
	}
	return s.Err()
}
