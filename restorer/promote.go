package restorer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/durable"
	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/stream"
)

// ErrBehind: a promotion could not get every line the old master had shipped.
var ErrBehind = errors.New("the standby cannot reach the version the old master shipped")

// Finish is a promotion's last step on the standby: with Run stopped, it copies every line the
// stream and the local metalogger have (at least up to version until, when until is not 0,
// waiting up to wait for it) to DIR/pending.mfs, after DIR/metadata.mfs. It does not fold them:
// the master that starts on both (mfsmaster -a, see HandOver) replays them while it loads,
// which costs one load of the metadata instead of two. It returns the materialized position and
// the newest line copied. It must not run concurrently with Run.
func (s *Standby) Finish(ctx context.Context, until uint64, wait time.Duration) (Position, uint64, error) {
	if err := s.loadPending(); err != nil {
		return Position{}, 0, err
	}
	deadline := time.Now().Add(wait)
	for {
		if tl := s.newest.Load(); tl == nil || s.needsResync(*tl) {
			// follow first learns the newest timeline; fold then resynchronizes from a snapshot.
			if err := s.follow(ctx); err != nil && tl == nil {
				return Position{}, 0, err
			}
			if tl := s.newest.Load(); tl != nil && s.needsResync(*tl) {
				if err := s.fold(ctx, true); err != nil {
					return Position{}, 0, err
				}
			}
		}
		if s.Materialized().Version == 0 {
			return Position{}, 0, errors.New("promotion: nothing materialized yet (no snapshot in the stream?)")
		}
		err := s.follow(ctx)
		local := s.Local()
		if until == 0 || local >= until {
			if err != nil {
				s.log.Warn("promotion: the stream could not be read; using the local copy and metalogger", "err", err, "local", local)
			}
			break
		}
		if time.Now().After(deadline) {
			return Position{}, 0, fmt.Errorf("%w: local copy up to %d, the old master shipped up to %d (last error: %v)", ErrBehind, local, until, err)
		}
		select {
		case <-ctx.Done():
			return Position{}, 0, ctx.Err()
		case <-time.After(s.cfg.Poll / 5):
		}
	}
	return s.Materialized(), s.Local(), nil
}

func (s *Standby) needsResync(tl stream.Timeline) bool {
	pos := s.Materialized()
	return pos.Version == 0 || pos.Timeline != tl.Timeline || pos.Version < tl.FirstVersion
}

// HandOver moves DIR/metadata.mfs and the lines after it (DIR/pending.mfs) into a master's
// DATA_PATH dir, as metadata.mfs and changelog.1.mfs (neither may exist there), durably, and
// forgets the standby's position: they now belong to the master that starts on them with
// mfsmaster -a. A later Run starts over from a snapshot.
func (s *Standby) HandOver(dir string) error {
	moves := [][2]string{{filepath.Join(s.cfg.Dir, "metadata.mfs"), filepath.Join(dir, "metadata.mfs")}}
	if st, err := os.Stat(s.pendingPath()); err == nil && st.Size() > 0 {
		moves = append(moves, [2]string{s.pendingPath(), filepath.Join(dir, "changelog.1.mfs")})
	}
	for _, m := range moves {
		if _, err := os.Lstat(m[1]); err == nil {
			return fmt.Errorf("hand over %s: %s already exists", m[0], m[1])
		}
	}
	// The files become the master's: give them DATA_PATH's owner, whom mfsmaster runs as
	// (WORKING_USER); the fold user and the standby's directory owner may be others.
	owner, group := -1, -1
	if fi, err := os.Stat(dir); err == nil && os.Geteuid() == 0 {
		st := fi.Sys().(*syscall.Stat_t)
		owner, group = int(st.Uid), int(st.Gid)
	}
	for _, m := range moves {
		if err := os.Chown(m[0], owner, group); err != nil {
			return fmt.Errorf("hand over %s: %w", m[0], err)
		}
		if err := os.Rename(m[0], m[1]); err != nil {
			return fmt.Errorf("hand over the standby's metadata: %w", err)
		}
	}
	if err := durable.SyncDir(dir); err != nil {
		return err
	}
	for _, p := range []string{s.statePath(), s.pendingPath()} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("hand over: %w", err)
		}
	}
	s.mu.Lock()
	s.pos.Store(&Position{})
	s.local, s.localHash, s.keptFrom = 0, 0, 0
	s.mu.Unlock()
	return durable.SyncDir(s.cfg.Dir)
}

// LineHash returns the stream.LineHash of line version on timeline tl, read from the stream,
// from a batch signed by a key of v.
func LineHash(ctx context.Context, js jetstream.JetStream, v *sign.Verifier, cluster string, tl stream.Timeline, version uint64) (uint64, error) {
	chk, err := newBatchCheck(v)
	if err != nil {
		return 0, err
	}
	res, err := streamLines(ctx, js, chk, cluster, Plan{Timeline: tl, From: version, To: version}, io.Discard)
	if err != nil {
		return 0, err
	}
	if res.Lines != 1 || res.LastLine != version {
		return 0, fmt.Errorf("line %d of timeline %d: not in the stream", version, tl.Timeline)
	}
	return res.LastHash, nil
}
