package restorer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/durable"
	"github.com/mfsha/mfsha/internal/liveness"
	"github.com/mfsha/mfsha/internal/moosefs"
	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
)

// StandbyConfig configures a Standby. Zero fields take the defaults of DefaultStandbyConfig.
type StandbyConfig struct {
	Cluster   string
	Dir       string        // DIR/metadata.mfs is the materialized metadata, DIR/standby.state its position
	FoldLines int           // fold as soon as this many lines are waiting
	FoldEvery time.Duration // fold waiting lines at least this often
	// FoldReplay: fold when replaying the waiting lines would take longer (foldpolicy.go).
	FoldReplay time.Duration
	// FoldCPUPercent bounds the folds' average CPU, in percent of a core (foldpolicy.go).
	FoldCPUPercent int
	// FoldNiceLevel is the CPU nice level of the background folds' mfsmaster, 0 to 19 (0:
	// mfsha's own; the command line's default is DefaultFoldNiceLevel, see there why). A fold
	// a promotion forces runs at mfsha's own.
	FoldNiceLevel int
	Poll          time.Duration // look at the stream this often
	// MetaloggerDir, when set, is a local mfsmetalogger's DATA_PATH: its lines beyond the
	// stream's are merged in (the better of the two paths).
	MetaloggerDir string
	// Receive, when set, is host:port of the master's metalogger port (the VIP's 9419): the
	// standby receives the changelog itself, in real time, into DIR/ml and merges it as a
	// metalogger's (receive.go), instead of MetaloggerDir.
	Receive string
	// Mfsmaster folds (MFSMASTER_BIN); zero: "mfsmaster" found on PATH or in /usr/sbin.
	Mfsmaster moosefs.Mfsmaster
	// FoldUser runs mfsmaster for the folds when mfsha runs as root (see FoldUser); empty:
	// DefaultFoldUser.
	FoldUser string
	// Live, when set, receives a tick from each of the two loops every round (for /health).
	Live *liveness.Monitor
	// Verifier holds the trusted public keys (TRUSTED_KEYS); required. Every snapshot and
	// batch is checked against it (and batches pass the epoch check, see batchCheck) before
	// a line is copied to pending.mfs or reaches mfsmaster.
	Verifier *sign.Verifier
}

// DefaultStandbyConfig: at most about 50,000 lines wait (0.15 s of replay at 1M inodes), and
// an idle stream costs three small requests every Poll (250 ms: the local copy trails by about that).
func DefaultStandbyConfig() StandbyConfig {
	return StandbyConfig{FoldLines: 50000, FoldEvery: 30 * time.Second, Poll: 250 * time.Millisecond,
		FoldReplay: DefaultFoldReplay, FoldCPUPercent: DefaultFoldCPUPercent}
}

// Validate checks the fields, naming the setting.
func (c StandbyConfig) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("DATA_PATH: not set")
	case c.Verifier == nil:
		return errNoTrustedKeys
	case c.FoldLines < 1:
		return fmt.Errorf("FOLD_LINES = %d: want at least 1", c.FoldLines)
	case c.FoldEvery <= 0 || c.Poll <= 0:
		return fmt.Errorf("FOLD_EVERY = %v, POLL = %v: want more than 0", c.FoldEvery, c.Poll)
	case c.FoldReplay <= 0:
		return fmt.Errorf("FOLD_REPLAY = %v: want more than 0", c.FoldReplay)
	case c.FoldCPUPercent < 1 || c.FoldCPUPercent > 400:
		return fmt.Errorf("FOLD_CPU_PERCENT = %d: want 1 to 400 (percent of one core)", c.FoldCPUPercent)
	case c.FoldNiceLevel < 0 || c.FoldNiceLevel > MaxFoldNiceLevel:
		return fmt.Errorf("FOLD_NICE_LEVEL = %d: want 0 (mfsha's own priority) to %d (the lowest)", c.FoldNiceLevel, MaxFoldNiceLevel)
	case c.Poll > c.FoldEvery:
		return fmt.Errorf("POLL = %v is longer than FOLD_EVERY = %v", c.Poll, c.FoldEvery)
	case c.Receive != "" && c.MetaloggerDir != "":
		return fmt.Errorf("RECEIVE = %s and METALOGGER_PATH = %s: set one (RECEIVE replaces the local metalogger)", c.Receive, c.MetaloggerDir)
	}
	if c.Receive != "" {
		if _, _, err := net.SplitHostPort(c.Receive); err != nil {
			return fmt.Errorf("RECEIVE = %s: want host:port of the master's metalogger port (e.g. the VIP and 9419): %w", c.Receive, err)
		}
	}
	_, err := LookupFoldUser(c.FoldUser)
	return err
}

// Position is what the standby has materialized: DIR/metadata.mfs of Version on Timeline.
type Position struct {
	Timeline uint64 `json:"timeline"`
	Version  uint64 `json:"version"`
}

// Standby keeps DIR/metadata.mfs materialized from the stream: the newest snapshot once, then
// the changelog, copied to DIR/pending.mfs as it is shipped and folded in by the real
// mfsmaster whenever enough lines wait, so that a promotion has little left to replay. The last good metadata is replaced only by a checked,
// newer one (see Apply). Create it with NewStandby; Run does the work.
type Standby struct {
	cfg   StandbyConfig
	js    jetstream.JetStream
	store *snapshot.Store
	log   *slog.Logger
	pos   atomic.Pointer[Position]
	m     *StandbyMetrics
	check *batchCheck // every batch read, by the follower and the folder

	mu        sync.Mutex // guards local and pending.mfs
	local     uint64     // next version to append to pending.mfs
	localHash uint64     // stream.LineHash of line local-1, when known
	torn      bool       // pending.mfs may end in a cut line: load it again before appending
	badSeq    uint64     // the unusable last batch last reported, owned by the follower
	// lastChange is the version of the last line in pending.mfs that is not IDLE (see
	// idle.go); 0 when none is. Lines below the materialized version do not count.
	lastChange uint64
	// keptFrom is the first line pending.mfs keeps below the materialized version (lines the
	// stream lacked when they were folded, see unshippedFrom); 0 when none.
	keptFrom uint64
	ml       *metaloggerSource
	newest   atomic.Pointer[stream.Timeline]
	lastFold time.Time // owned by the folder
	// lastFoldStart: when the last fold began (the CPU bound counts from it); owned by the folder.
	lastFoldStart time.Time
	costs         foldCosts // what the folds cost (foldcost.go)
}

// NewStandby checks cfg, fills defaults and reads the persisted position, if any.
func NewStandby(cfg StandbyConfig, js jetstream.JetStream, store *snapshot.Store, log *slog.Logger, m *StandbyMetrics) (*Standby, error) {
	def := DefaultStandbyConfig()
	if cfg.FoldLines == 0 {
		cfg.FoldLines = def.FoldLines
	}
	if cfg.FoldEvery == 0 {
		cfg.FoldEvery = def.FoldEvery
	}
	if cfg.Poll == 0 {
		cfg.Poll = def.Poll
	}
	if cfg.FoldReplay == 0 {
		cfg.FoldReplay = def.FoldReplay
	}
	if cfg.FoldCPUPercent == 0 {
		cfg.FoldCPUPercent = def.FoldCPUPercent
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mfsmaster.Path == "" {
		var err error
		if cfg.Mfsmaster, err = moosefs.FindMfsmaster(context.Background(), ""); err != nil {
			return nil, fmt.Errorf("standby: %w", err)
		}
	}
	if m == nil {
		m = NewStandbyMetrics(nil)
	}
	s := &Standby{cfg: cfg, js: js, store: store, log: log, m: m, check: &batchCheck{v: cfg.Verifier}}
	if cfg.MetaloggerDir != "" {
		s.ml = &metaloggerSource{dir: cfg.MetaloggerDir}
	}
	if cfg.Receive != "" {
		s.ml = &metaloggerSource{dir: s.receiveDir()}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("standby: %w", err)
	}
	b, err := os.ReadFile(s.statePath())
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.pos.Store(&Position{})
	case err != nil:
		return nil, fmt.Errorf("standby: %w", err)
	default:
		var p Position
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("standby: %s: %w", s.statePath(), err)
		}
		s.pos.Store(&p)
	}
	return s, nil
}

func (s *Standby) statePath() string { return filepath.Join(s.cfg.Dir, "standby.state") }

// Materialized is the position of DIR/metadata.mfs; zero before the first fold.
func (s *Standby) Materialized() Position { return *s.pos.Load() }

// Run keeps the metadata materialized until ctx ends (returning nil). Two loops share the
// work: the follower appends shipped lines to DIR/pending.mfs every Poll (so the standby's
// local copy trails the stream by about Poll, whatever a fold costs), and the folder folds
// them into DIR/metadata.mfs when FoldLines wait or FoldEvery has passed. Errors of one round
// (NATS away, a gap, a corrupt batch) are logged and counted; the last good metadata stays
// and the next round tries again.
func (s *Standby) Run(ctx context.Context) error {
	if err := s.loadPending(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	if s.cfg.Receive != "" {
		sp, err := newReceiveSpool(s.cfg.Receive, s.receiveDir(), s.log)
		if err != nil {
			return err
		}
		wg.Go(func() { sp.run(ctx, s.Local) })
	}
	wg.Add(2)
	go func() { defer wg.Done(); s.loop(ctx, "follow", s.follow) }()
	go func() {
		defer wg.Done()
		s.loop(ctx, "fold", func(ctx context.Context) error { return s.fold(ctx, false) })
	}()
	wg.Wait()
	return nil
}

func (s *Standby) loop(ctx context.Context, what string, round func(context.Context) error) {
	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	defer s.cfg.Live.Done("standby " + what)
	var waitSaid time.Time
	for {
		s.cfg.Live.Tick("standby " + what)
		err := round(ctx)
		switch {
		case err != nil && errors.Is(err, ErrNoSnapshot) && s.Materialized().Version == 0:
			// A cluster's start: the master uploads its first snapshot (seconds at millions of
			// inodes). Not an error, said every 30 s: a master with NO_SNAPSHOTS never uploads one.
			if time.Since(waitSaid) >= 30*time.Second {
				waitSaid = time.Now()
				s.log.Warn("standby: waiting for the master's first snapshot (a master shipping with NO_SNAPSHOTS never uploads one)", "err", err)
			}
		case err != nil && ctx.Err() == nil:
			s.m.Errors.Inc()
			if errors.Is(err, ErrGap) {
				s.m.Gap.Set(1)
			}
			s.log.Error("standby "+what+" failed; keeping the last good metadata", "err", err, "materialized", s.Materialized())
		case err == nil:
			s.m.Gap.Set(0)
		}
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		}
	}
}

func (s *Standby) pendingPath() string { return filepath.Join(s.cfg.Dir, "pending.mfs") }

// receiveDir is where RECEIVE's lines are spooled as a metalogger's files.
func (s *Standby) receiveDir() string { return filepath.Join(s.cfg.Dir, "ml") }

// loadPending finds how far DIR/pending.mfs goes: whole, contiguous lines from the
// materialized version on. A torn last line (a crash while appending) is cut off; anything
// else that does not fit is dropped, to be fetched again.
func (s *Standby) loadPending() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadPendingLocked()
}

// loadPendingLocked is loadPending with mu held. Every line is parsed whole (a torn or glued
// line does not parse, or does not continue the versions), and the file is cut before the
// first one that does not fit.
func (s *Standby) loadPendingLocked() error {
	pos := s.Materialized()
	s.local, s.localHash, s.keptFrom = pos.Version, 0, 0
	f, err := os.Open(s.pendingPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("standby: %w", err)
	}
	defer f.Close()
	sc := changelog.NewScanner(f, s.pendingPath())
	var good int64
	next := pos.Version
	for sc.Scan() {
		v := sc.Line().Version
		if v < next {
			// A line kept because the stream lacks it (see unshippedFrom); the one just
			// below the materialized version is what the metalogger's next line continues.
			if s.keptFrom == 0 {
				s.keptFrom = v
			}
			if v+1 == next {
				s.localHash = stream.LineHash(sc.Raw())
			}
			good += int64(len(sc.Raw()) + 1)
			continue
		}
		if v != next {
			break
		}
		good += int64(len(sc.Raw()) + 1)
		s.localHash = stream.LineHash(sc.Raw())
		if !isIdle(sc.Raw()) {
			s.lastChange = v
		}
		next++
	}
	s.local = next
	if err := sc.Err(); err != nil && s.log != nil {
		s.log.Warn("pending lines end in a line that does not parse; cut there", "file", s.pendingPath(), "at_byte", good, "err", err)
	}
	if err := os.Truncate(s.pendingPath(), good); err != nil {
		s.torn = true
		return fmt.Errorf("standby: cut %s to %d bytes: %w", s.pendingPath(), good, err)
	}
	s.torn = false
	return nil
}

// follow appends to the local copy the lines the stream has beyond it, then those the local
// metalogger has beyond that (when one is configured): the better of the two paths. With NATS
// unreachable the metalogger alone keeps the copy current.
func (s *Standby) follow(ctx context.Context) error {
	tls, serr := stream.Timelines(ctx, s.js, s.cfg.Cluster)
	var tl *stream.Timeline
	if serr == nil && len(tls) > 0 {
		tl = &tls[len(tls)-1]
		s.m.Newest.Set(float64(tl.LastVersion))
		s.newest.Store(tl)
		if tl.BadSeq != 0 && tl.BadSeq != s.badSeq {
			s.badSeq = tl.BadSeq // said once per bad batch
			s.log.Error("the stream's last batches are unusable: following up to the last good one", "stream_seq", tl.BadSeq,
				"timeline", tl.Timeline, "last_good_version", tl.LastVersion, "err", tl.BadErr)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pos := s.Materialized()
	if pos.Version == 0 || (tl != nil && (pos.Timeline != tl.Timeline || pos.Version < tl.FirstVersion)) {
		return serr // the folder resynchronizes first
	}
	if done, err := s.checkUnshipped(ctx, tl); err != nil || done {
		return errors.Join(serr, err)
	}
	if s.torn {
		// A failed write could not be cut back: read the file again before appending to it.
		if err := s.loadPendingLocked(); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(s.pendingPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("standby: %w", err)
	}
	defer f.Close()
	// Safety: pending.mfs must hold whole, contiguous lines up to s.local-1 and nothing else:
	// loadPending, the folds and a promotion read it. A failed write (a full disk) can leave
	// part of a buffer at its end, cut inside a line; appending after that would glue a later
	// line to it. So on any write error the file is cut back to its size before this round and
	// s.local goes back with it: the next round fetches those lines again.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("standby: %s: %w", s.pendingPath(), err)
	}
	local, localHash := s.local, s.localHash
	rollback := func(cause error) error {
		s.local, s.localHash = local, localHash
		if err := f.Truncate(size); err != nil {
			s.torn = true
			return fmt.Errorf("%w; cutting %s back to %d bytes: %v", cause, s.pendingPath(), size, err)
		}
		return cause
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := &changeTracker{w: bw, next: s.local}
	appended := 0
	if tl != nil && s.local <= tl.LastVersion {
		var res Outcome
		res, serr = streamLines(ctx, s.js, s.check, s.cfg.Cluster, Plan{Timeline: *tl, From: s.local, To: tl.LastVersion}, w)
		if res.Lines > 0 {
			s.local, s.localHash = res.LastLine+1, res.LastHash
			appended += res.Lines
		}
	}
	if s.ml != nil && s.localHash == 0 && tl != nil && s.local > tl.FirstVersion && s.local-1 <= tl.LastVersion {
		// The metalogger's lines must continue ours, checked by the hash of our last line;
		// after a resynchronization or a restart with nothing pending that line is only in
		// the stream. Without it the metalogger would never be merged, and a promotion right
		// then would miss the lines the old master never shipped.
		var res Outcome
		res, err = streamLines(ctx, s.js, s.check, s.cfg.Cluster, Plan{Timeline: *tl, From: s.local - 1, To: s.local - 1}, io.Discard)
		if err == nil && res.Lines == 1 && res.LastLine == s.local-1 {
			s.localHash = res.LastHash
		} else if s.log != nil {
			s.log.Warn("metalogger not merged: the stream's line before it could not be read", "version", s.local-1, "err", err)
		}
	}
	if s.ml != nil && s.localHash != 0 {
		n, last, hash, err := s.ml.merge(s.local, s.localHash, w)
		if err != nil {
			s.log.Warn("metalogger not merged", "err", err)
		}
		if n > 0 {
			s.local, s.localHash = last+1, hash
			appended += n
			s.m.MetaloggerLines.Add(float64(n))
		}
	}
	if err := bw.Flush(); err != nil {
		return rollback(fmt.Errorf("standby: write %s: %w", s.pendingPath(), err))
	}
	if w.lastChange != 0 { // only lines now in pending.mfs count
		s.lastChange = w.lastChange
	}
	if appended > 0 {
		if err := f.Sync(); err != nil {
			return rollback(fmt.Errorf("standby: sync %s: %w", s.pendingPath(), err))
		}
	}
	s.m.Pending.Set(float64(s.local - pos.Version))
	s.m.Local.Set(float64(s.local - 1))
	if tl == nil || s.local > tl.LastVersion {
		s.m.LagSeconds.Set(0)
	} else {
		s.m.LagSeconds.Set(float64(time.Now().Unix() - tl.LastTime))
	}
	return serr
}

// LineDirs lists the local directories whose changelog_ml files this standby merges (a local
// mfsmetalogger's DATA_PATH, or its receiver's spool); none without. A promoter looks up
// there the line behind a chunk lock that only the folded metadata shows (failover's
// lostchunks.go).
func (s *Standby) LineDirs() []string {
	if s.ml == nil {
		return nil
	}
	return []string{s.ml.dir}
}

// Streamed is the newest version of the newest timeline when the standby last read the
// stream (0 before it did): the lines Local has beyond it came from the metalogger only.
func (s *Standby) Streamed() uint64 {
	if tl := s.newest.Load(); tl != nil {
		return tl.LastVersion
	}
	return 0
}

// Local is the newest version copied to the standby's disk.
func (s *Standby) Local() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local - 1
}

// fold folds the pending lines into the materialized metadata when there is reason to (always
// when force is set), or resynchronizes from the newest snapshot when the position is no
// longer usable.
func (s *Standby) fold(ctx context.Context, force bool) error {
	tl := s.newest.Load()
	if tl == nil {
		return nil
	}
	pos := s.Materialized()
	nice := s.cfg.FoldNiceLevel
	if force {
		nice = 0 // a promotion waits on it
	}
	var plan Plan
	switch {
	case pos.Version == 0 || pos.Timeline != tl.Timeline || pos.Version < tl.FirstVersion:
		if pos.Version != 0 {
			s.log.Warn("resynchronizing from the newest snapshot", "materialized", pos, "timeline", tl.Timeline,
				"retained_from", tl.FirstVersion, "why", resyncReason(pos, *tl))
		}
		tls, err := stream.Timelines(ctx, s.js, s.cfg.Cluster)
		if err != nil {
			return err
		}
		snaps, err := s.store.List(ctx)
		if err != nil {
			return err
		}
		if plan, err = CalcPlan(tls, snaps, tl.Timeline, Target{}); err != nil {
			return err
		}
		return s.resync(ctx, tls, snaps, plan, nice)
	default:
		s.mu.Lock()
		local, lastChange := s.local, s.lastChange
		s.mu.Unlock()
		waiting := int64(local) - int64(pos.Version)
		// FOLD_EVERY and FOLD_REPLAY fold only when a line that changes metadata waits: an
		// idle 4.x master writes IDLE() every 30 s, and folding those would rewrite the
		// metadata for nothing. FOLD_LINES counts every line (it bounds pending.mfs), the CPU
		// bound holds all three back (foldpolicy.go), and a forced fold takes all.
		changed := lastChange >= pos.Version
		if waiting <= 0 {
			return nil
		}
		if !force {
			due, why := s.foldDue(waiting, changed, time.Now())
			if !due {
				return nil
			}
			s.log.Debug("folding", "why", why)
		}
		plan = Plan{Timeline: *tl, BaseFile: filepath.Join(s.cfg.Dir, "metadata.mfs"), LinesFile: s.pendingPath(), From: pos.Version, To: local - 1}
	}
	return s.apply(ctx, plan, nice)
}

// resync applies a plan that starts from a snapshot. A snapshot that turns out corrupt (its
// chunks missing or not matching its signed digest: snapshot.ErrCorrupt) is left out and the
// plan made again from the next older one, whose lines the stream may still hold: a standby
// must not wait forever on one bad object (seen: a snapshot whose upload was cut short, before
// the store settled such publishes) while an older snapshot and the stream can do. Only when
// none is left does the error stand.
func (s *Standby) resync(ctx context.Context, tls []stream.Timeline, snaps []snapshot.Snapshot, plan Plan, nice int) error {
	for {
		err := s.apply(ctx, plan, nice)
		if err == nil || plan.Snapshot == nil || !errors.Is(err, snapshot.ErrCorrupt) {
			return err
		}
		bad := plan.Snapshot.Name
		snaps = slices.DeleteFunc(snaps, func(sn snapshot.Snapshot) bool { return sn.Name == bad })
		next, perr := CalcPlan(tls, snaps, plan.Timeline.Timeline, Target{})
		if perr != nil {
			return fmt.Errorf("%w; and no older snapshot will do: %w", err, perr)
		}
		instead := "the empty file system and every line"
		if next.Snapshot != nil {
			instead = next.Snapshot.Name
		}
		s.log.Error("a snapshot is corrupt; resynchronizing from an older one", "corrupt", bad, "err", err, "instead", instead)
		s.m.Errors.Inc()
		plan = next
	}
}

// apply applies plan into the standby's directory, folding at CPU nice level nice, and takes
// its result as the materialized position.
func (s *Standby) apply(ctx context.Context, plan Plan, nice int) error {
	start := time.Now()
	out, err := Apply(ctx, s.js, s.store, plan, Options{Cluster: s.cfg.Cluster, OutDir: s.cfg.Dir, Force: true, Mfsmaster: s.cfg.Mfsmaster,
		FoldUser: s.cfg.FoldUser, Nice: nice, Log: s.log, Verifier: s.cfg.Verifier, check: s.check})
	if err != nil {
		return err
	}
	next := Position{Timeline: plan.Timeline.Timeline, Version: out.Version}
	if err := writeState(s.statePath(), next); err != nil {
		return err
	}
	s.mu.Lock()
	s.pos.Store(&next)
	err = s.compact(plan.LinesFile == "", unshippedFrom(next, s.newest.Load()))
	if s.local == next.Version && out.Lines > 0 {
		s.localHash = out.LastHash // what the metalogger's lines must continue
	}
	s.mu.Unlock()
	s.lastFold, s.lastFoldStart = time.Now(), start
	took := time.Since(start)
	s.m.Materialized.Set(float64(next.Version))
	s.m.FoldSeconds.Observe(took.Seconds())
	s.recordFold(out.Fold, out.Lines, took)
	s.log.Info("materialized", "timeline", next.Timeline, "version", next.Version, "lines", out.Lines, "took", took.Round(time.Millisecond))
	return err
}

// compact drops from pending.mfs the lines now in the materialized metadata (all of them
// after a resynchronization), except those from keepFrom on (see unshippedFrom), atomically.
// Called with mu held.
func (s *Standby) compact(reset bool, keepFrom uint64) error {
	pos := s.Materialized()
	keepFrom = min(keepFrom, pos.Version)
	s.keptFrom = 0
	if keepFrom < pos.Version && !reset {
		s.keptFrom = keepFrom
	}
	tmp := s.pendingPath() + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("standby: %w", err)
	}
	defer os.Remove(tmp)
	w := bufio.NewWriterSize(out, 1<<20)
	if in, err := os.Open(s.pendingPath()); err == nil && !reset {
		sc := changelog.NewScanner(in, s.pendingPath())
		for sc.Scan() {
			if sc.Line().Version >= keepFrom {
				w.Write(sc.Raw())
				w.WriteByte('\n')
			}
		}
		in.Close()
	}
	if reset || s.local < pos.Version {
		s.local, s.localHash = pos.Version, 0
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, s.pendingPath())
}

func resyncReason(pos Position, tl stream.Timeline) string {
	if pos.Timeline != tl.Timeline {
		return fmt.Sprintf("the stream moved to timeline %d", tl.Timeline)
	}
	return fmt.Sprintf("version %d fell out of retention", pos.Version)
}

// writeState persists the position atomically: temp file, fsync, rename, fsync the directory.
func writeState(path string, p Position) error {
	b, _ := json.Marshal(p)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("standby state: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("standby state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("standby state: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("standby state: %w", err)
	}
	return durable.SyncDir(filepath.Dir(path))
}
