package failover

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/chunklock"
	"github.com/mfsha/mfsha/internal/mfsclient"
	"github.com/mfsha/mfsha/internal/moosefs"
	"github.com/mfsha/mfsha/restorer"
)

// Lost chunks of an unfinished write (failover/DESIGN.md, "A new chunk that no chunkserver
// created").
//
// The mechanism: mfsmaster logs the line that gives a client a chunk to write (WRITE, TRUNC)
// before the packets that make the chunkservers create it, or raise its version, leave the
// master; the client gets its answer only once a chunkserver confirmed. A master that stops or
// dies between the two (a kill -9, a crash, and every stop that removes the VIP first: the
// packets' source is the VIP) leaves a chunk that every later master has with no valid copy.
// Such a master answers the client's retried WRITE_CHUNK with CHUNKLOST for ever; mfsmount
// retries for about 150 s, then the write fails with ENXIO.
//
// The fix: once the new master serves, for each chunk lock the promotion released (the lines
// show an unfinished write: no UNLOCK), ask the master, as a reading client would, where that
// chunk is, and repair the file (CLTOMA_FUSE_REPAIR, what mfsfilerepair does) when the master
// answers CHUNKLOST.
//
// Safety, who may believe what:
//   - mfsmaster answers CHUNKLOST to a reader only when the chunk has no valid copy while it
//     has every chunkserver its metadata knows (the chunkserver database, kept through the
//     changelog's CSDBOP lines) and none is still registering (chunks.c,
//     chunk_get_version_and_csdata, 3.0.117 and 4.59.2). Before that it offers no copy and
//     this waits: a chunkserver that is late is never taken for one without the chunk.
//   - The lock was never released, so the client's WRITE_CHUNK_END never reached a master: its
//     write was not acknowledged (close() had not returned). Nothing acknowledged by that
//     write is lost.
//   - The repair takes a chunk back to the newest version a chunkserver holds (a version
//     raise that never reached them: the data before the unfinished write), or, with no copy
//     at all, erases it: the index becomes a hole and the client's retry creates a new chunk.
//     An erased chunk that was a copy-on-write duplicate of a snapshot's chunk (its creation
//     lost) loses the earlier contents of that chunk in this file; the snapshot keeps them.
//     The log names file, index and chunk. Without this, that chunk reads as an error for
//     ever and the operator's remedy is the same mfsfilerepair.
//   - A file with other chunks without a copy (not from the unfinished write) is not
//     repaired: that is an operator's decision; the log says so.
//   - The repair is an ordinary client request: the master logs it (REPAIR line), the
//     shipper ships it, standbys and restores replay it.
//
// It runs beside the term and ends with it; it never delays serving.

// lostRepairEvery is how often the master is asked again while it cannot yet tell (a
// chunkserver not back yet); lostRepairFor bounds the whole effort: the client gives up
// after about 150 s anyway, but the file stays broken until repaired.
const (
	lostRepairEvery = 500 * time.Millisecond
	lostRepairFor   = 10 * time.Minute
	lostRepairCall  = 5 * time.Second
)

// lineDirser is a Standby that tells where its local changelog_ml files are
// (*restorer.Standby does).
type lineDirser interface{ LineDirs() []string }

var _ lineDirser = (*restorer.Standby)(nil)

// repairLost starts the repair of locks (those the promotion or restart released) beside
// the term t, with those an earlier term handed on (repairs.go). sb, when not nil, is the
// standby the promotion came from: its local lines help find the file of a lock only the
// metadata kept.
func (n *Node) repairLost(ctx context.Context, t *term, locks []chunklock.Lock, sb Standby) {
	dirs := []string{n.d.Master.DataPath()}
	if d, ok := sb.(lineDirser); ok {
		dirs = append(dirs, d.LineDirs()...)
	}
	locks = locateLocks(dirs, locks, n.log)
	rctx, cancel := context.WithTimeout(ctx, lostRepairFor)
	done := make(chan struct{})
	t.repairStop, t.repairDone = cancel, done
	epoch := t.k.epoch()
	t.arpWG.Go(func() {
		defer close(done)
		defer cancel()
		all, rev, err := pendingRepairs(rctx, n.d.Lease, n.cfg.Name, epoch, locks, time.Now())
		if err != nil {
			n.log.Warn("lost chunks: the pending repairs are not handed on; if this term ends before they settle, the next master will not check them", "err", err)
		}
		if len(all) == 0 {
			return
		}
		if len(all) > len(locks) { // the adopted ones follow this term's own
			n.log.Info("lost chunks: checking the chunks an earlier term left unsettled", "adopted", inodes(all[len(locks):]))
		}
		repairLostChunks(rctx, nil, n.d.Master.ProbeAddr(), n.d.Master.Mfsmaster().Version, all, n.m, n.log)
		// Settled, refused or given up: nothing to hand on. Stopped with the term: the
		// record stays for the next.
		if rev == 0 || (rctx.Err() != nil && !errors.Is(rctx.Err(), context.DeadlineExceeded)) {
			return
		}
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(rctx), repairsCall)
		defer ccancel()
		if err := n.d.Lease.ClearRepairs(cctx, rev); err != nil {
			n.log.Info("lost chunks: the pending repairs record was not cleared (a later term's, or NATS away); the next term checks them again", "err", err)
		}
	})
}

// repairOnStop bounds how long a node that is stopped lets a repair of lost chunks finish.
const repairOnStop = 15 * time.Second

// finishRepairs waits, up to limit, for the term's repair of lost chunks to end before a
// stop ends the term. Why: the locks it checks were released by this term's UNLOCK lines,
// which are shipped; the next master finds them released and knows nothing of the chunks.
// Stopped before the master could tell (its chunkservers register seconds after it starts),
// a lost chunk would stay unreadable and its writer stuck (seen in TestFailoverBootRules: a
// node stopped 2 s after its boot released a lock). The repair usually settles within 5 s of
// the start; a stop is not in a hurry. A switchover or a failure does not wait: the next
// master adopts what is pending from the repairs record (repairs.go).
func (n *Node) finishRepairs(t *term, limit time.Duration) {
	if t.repairDone == nil {
		return
	}
	select {
	case <-t.repairDone:
		return
	default:
	}
	n.log.Info("stopping: the repair of lost chunks finishes first", "at_most", limit)
	select {
	case <-t.repairDone:
	case <-time.After(limit):
		n.log.Warn("stopping: the repair of lost chunks did not finish; it ends with this term", "waited", limit)
	}
}

// locateLocks returns the locks that name their file. A lock only the metadata kept (Inode
// 0: a standby folded the line, or a clean stop saved it) is looked up in the changelog
// files of dirs (changelog.N.mfs, changelog_ml.N.mfs) written since the oldest such lock was
// taken: the newest line that gave that chunk to a file names it. One not found is logged
// and left out.
func locateLocks(dirs []string, locks []chunklock.Lock, log *slog.Logger) []chunklock.Lock {
	out := slices.Clone(locks)
	missing := map[uint64]int{}
	oldest := time.Now()
	for i, l := range out {
		if l.Inode == 0 {
			missing[l.Chunk] = i
			if at := time.Unix(int64(l.Time), 0); at.Before(oldest) {
				oldest = at
			}
		}
	}
	if len(missing) > 0 {
		for _, dir := range dirs {
			files, _ := filepath.Glob(filepath.Join(dir, "changelog*.mfs"))
			for _, p := range files {
				if fi, err := os.Stat(p); err != nil || fi.ModTime().Before(oldest.Add(-time.Minute)) {
					continue // written before the lock was taken
				}
				if err := findChunkOwners(p, missing, out); err != nil {
					log.Warn("lost chunks: changelog not searched", "file", p, "err", err)
				}
			}
		}
	}
	kept := out[:0]
	for _, l := range out {
		if l.Inode == 0 {
			log.Warn("lost chunks: a chunk lock of the metadata names no file in the local changelogs; if a writer reports 'Chunk lost', run mfsfilerepair on its file", "chunk", l.Chunk)
			continue
		}
		kept = append(kept, l)
	}
	return kept
}

// findChunkOwners fills Inode and Index of out[at] for each chunk of want from the WRITE
// and TRUNC lines of the changelog file p (the newest such line wins).
func findChunkOwners(p string, want map[uint64]int, out []chunklock.Lock) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	s := changelog.NewScanner(f, filepath.Base(p))
	for s.Scan() {
		l := s.Line()
		if (l.Op != "WRITE" && l.Op != "TRUNC") || !l.HasResult || len(l.Args) < 2 {
			continue
		}
		c, err := strconv.ParseUint(l.Result, 10, 64)
		if err != nil {
			continue
		}
		at, ok := want[c]
		if !ok || l.Version < out[at].Version {
			continue
		}
		ino, err1 := strconv.ParseUint(l.Args[0], 10, 32)
		idx, err2 := strconv.ParseUint(l.Args[1], 10, 32)
		if err1 == nil && err2 == nil {
			out[at].Inode, out[at].Index, out[at].Version = uint32(ino), uint32(idx), l.Version
		}
	}
	if err := s.Err(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// repairLostChunks asks the master at addr (MooseFS ver; dialled with dial, nil: directly)
// about each lock's chunk until each is settled (readable, gone, changed, or repaired) or ctx
// ends.
func repairLostChunks(ctx context.Context, dial mfsclient.DialFunc, addr string, ver moosefs.Version, locks []chunklock.Lock, m *Metrics, log *slog.Logger) {
	pending := locks
	start := time.Now()
	var s *mfsclient.Session // one session for every round; a new one after a broken connection
	defer func() {
		if s != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lostRepairCall)
			s.Close(cctx)
			cancel()
		}
	}()
	var waiting error
	for len(pending) > 0 {
		var err error
		if s == nil {
			cctx, cancel := context.WithTimeout(ctx, lostRepairCall)
			s, err = mfsclient.Register(cctx, dial, addr, ver, "mfsha: repair of lost chunks after failover")
			cancel()
		}
		if err == nil {
			pending, err = repairRound(ctx, start, s, pending, m, log)
		}
		var se *mfsclient.StatusError
		if errors.As(err, &se) && (se.Code == mfsclient.StatusEACCES || se.Code == mfsclient.StatusNoPassword || se.Code == mfsclient.StatusBadPassword) {
			log.Error("lost chunks: the master refuses mfsha's session or repair; give the address mfsha connects from 'rw,alldirs,maproot=0' on / in mfsexports.cfg (no password), or run mfsfilerepair on these files if a writer reports 'Chunk lost'", "master", addr, "err", err, "files", inodes(pending))
			return
		}
		if err != nil && se == nil && s != nil { // the connection, not the master's answer
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			s.Close(cctx)
			cancel()
			s = nil
		}
		waiting = err
		if len(pending) == 0 {
			break
		}
		if sleep(ctx, lostRepairEvery); ctx.Err() != nil {
			break
		}
	}
	if len(pending) > 0 {
		log.Error("lost chunks: the master never settled these chunks of unfinished writes; if a writer reports 'Chunk lost', run mfsfilerepair on the file", "files", inodes(pending),
			"after", time.Since(start).Round(time.Second), "last_err", waiting)
	}
}

func inodes(locks []chunklock.Lock) []string {
	var s []string
	for _, l := range locks {
		s = append(s, fmt.Sprintf("inode %d index %d chunk %d", l.Inode, l.Index, l.Chunk))
	}
	return s
}

// repairRound is one pass over the pending locks on the session s. It returns those still
// pending.
func repairRound(ctx context.Context, started time.Time, s *mfsclient.Session, pending []chunklock.Lock, m *Metrics, log *slog.Logger) ([]chunklock.Lock, error) {
	cctx, cancel := context.WithTimeout(ctx, lostRepairCall)
	defer cancel()
	var still []chunklock.Lock
	lost := map[uint32][]chunklock.Lock{}
	for i, l := range pending {
		loc, err := s.ReadChunk(cctx, l.Inode, l.Index)
		var se *mfsclient.StatusError
		switch {
		case errors.As(err, &se) && se.Code == mfsclient.StatusChunkLost:
			lost[l.Inode] = append(lost[l.Inode], l)
		case errors.As(err, &se):
			// ENOENT, NOCHUNK, EPERM...: the file or that chunk is gone; nothing to repair.
			log.Info("lost chunks: the chunk of an unfinished write needs nothing", "inode", l.Inode, "index", l.Index, "chunk", l.Chunk, "master", err)
		case err != nil:
			return append(still, pending[i:]...), err
		case loc.ID != l.Chunk:
			log.Info("lost chunks: the file has another chunk there now", "inode", l.Inode, "index", l.Index, "chunk", l.Chunk, "now", loc.ID)
		case loc.Copies > 0:
			log.Debug("lost chunks: the chunk of an unfinished write is readable", "inode", l.Inode, "index", l.Index, "chunk", l.Chunk, "copies", loc.Copies)
		default: // no copy offered yet: the master cannot tell until every chunkserver is back
			still = append(still, l)
		}
	}
	for inode, ls := range lost {
		if err := repairFile(cctx, started, s, inode, ls, m, log); err != nil {
			still = append(still, ls...)
			return still, err
		}
	}
	return still, nil
}

// repairFile repairs the file inode whose chunks ls the master reported lost, unless the
// file has more chunks without a copy than those.
func repairFile(ctx context.Context, started time.Time, s *mfsclient.Session, inode uint32, ls []chunklock.Lock, m *Metrics, log *slog.Logger) error {
	// The chunk each lock names must still be the file's (READ_CHUNK's CHUNKLOST does not say).
	same := ls[:0:0]
	for _, l := range ls {
		ch, err := s.Chunk(ctx, inode, l.Index)
		if err != nil {
			return err
		}
		if ch.ID != l.Chunk {
			log.Info("lost chunks: the file has another chunk there now", "inode", inode, "index", l.Index, "chunk", l.Chunk, "now", ch.ID)
			continue
		}
		same = append(same, l)
	}
	if ls = same; len(ls) == 0 {
		return nil
	}
	bare, err := s.ChunksWithoutCopies(ctx, inode)
	if err != nil {
		return err
	}
	if bare > uint32(len(ls)) {
		log.Error("lost chunks: not repairing a file that has other chunks without a copy too; run mfsfilerepair on it if that is what you want", "inode", inode,
			"without_copy", bare, "of_unfinished_writes", len(ls))
		return nil
	}
	r, err := s.Repair(ctx, inode)
	if err != nil {
		return err
	}
	m.LostRepaired.Add(float64(r.Erased + r.Repaired))
	log.Warn("lost chunks: repaired a file whose unfinished write's chunk no chunkserver had (the client's write was never acknowledged; its retry goes on)",
		"inode", inode, "chunks", inodes(ls), "erased", r.Erased, "back_to_older_version", r.Repaired, "unchanged", r.NotChanged,
		"after", time.Since(started).Round(time.Millisecond))
	return nil
}
