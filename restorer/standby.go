package restorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
)

// StandbyConfig configures a Standby. Zero fields take the defaults of DefaultStandbyConfig.
type StandbyConfig struct {
	Cluster   string
	Dir       string        // DIR/metadata.mfs is the materialized metadata, DIR/standby.state its position
	FoldLines int           // fold as soon as this many lines are waiting
	FoldEvery time.Duration // fold waiting lines at least this often
	Poll      time.Duration // look at the stream this often
}

// DefaultStandbyConfig: at most about 50,000 lines wait (0.15 s of replay at 1M inodes), and
// an idle stream costs one small request a second.
func DefaultStandbyConfig() StandbyConfig {
	return StandbyConfig{FoldLines: 50000, FoldEvery: 30 * time.Second, Poll: time.Second}
}

// Validate checks the fields, naming the setting.
func (c StandbyConfig) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("DATA_PATH: not set")
	case c.FoldLines < 1:
		return fmt.Errorf("FOLD_LINES = %d: want at least 1", c.FoldLines)
	case c.FoldEvery <= 0 || c.Poll <= 0:
		return fmt.Errorf("FOLD_EVERY = %v, POLL = %v: want more than 0", c.FoldEvery, c.Poll)
	case c.Poll > c.FoldEvery:
		return fmt.Errorf("POLL = %v is longer than FOLD_EVERY = %v", c.Poll, c.FoldEvery)
	}
	return nil
}

// Position is what the standby has materialized: DIR/metadata.mfs of Version on Timeline.
type Position struct {
	Timeline uint64 `json:"timeline"`
	Version  uint64 `json:"version"`
}

// Standby keeps DIR/metadata.mfs materialized from the stream: the newest snapshot once, then
// the changelog folded in by the real mfsmaster whenever enough lines wait, so that a
// promotion has little left to replay. The last good metadata is replaced only by a checked,
// newer one (see Apply). Create it with NewStandby; Run does the work.
type Standby struct {
	cfg   StandbyConfig
	js    jetstream.JetStream
	store *snapshot.Store
	log   *slog.Logger
	pos   atomic.Pointer[Position]
	m     *StandbyMetrics
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
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		m = NewStandbyMetrics(nil)
	}
	s := &Standby{cfg: cfg, js: js, store: store, log: log, m: m}
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

// Run keeps the metadata materialized until ctx ends (returning nil). Errors of one round
// (NATS away, a gap, a corrupt batch) are logged and counted, and the last good metadata
// stays; the next round tries again.
func (s *Standby) Run(ctx context.Context) error {
	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	lastFold := time.Now()
	for {
		folded, err := s.round(ctx, time.Since(lastFold) >= s.cfg.FoldEvery)
		if folded {
			lastFold = time.Now()
		}
		switch {
		case err != nil && ctx.Err() == nil:
			s.m.Errors.Inc()
			if errors.Is(err, ErrGap) {
				s.m.Gap.Set(1)
			}
			s.log.Error("standby round failed; keeping the last good metadata", "err", err, "materialized", s.Materialized())
		case folded:
			s.m.Gap.Set(0)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		}
	}
}

// round looks at the stream and folds when there is reason to.
func (s *Standby) round(ctx context.Context, due bool) (bool, error) {
	tls, err := stream.Timelines(ctx, s.js, s.cfg.Cluster)
	if err != nil {
		return false, err
	}
	if len(tls) == 0 {
		return false, nil
	}
	tl := tls[len(tls)-1]
	pos := s.Materialized()
	s.m.Newest.Set(float64(tl.LastVersion))
	s.m.LagSeconds.Set(0)
	var plan Plan
	switch {
	case pos.Version == 0 || pos.Timeline != tl.Timeline || pos.Version < tl.FirstVersion:
		if pos.Version != 0 {
			s.log.Warn("resynchronizing from the newest snapshot", "materialized", pos, "timeline", tl.Timeline,
				"retained_from", tl.FirstVersion, "why", resyncReason(pos, tl))
		}
		snaps, err := s.store.List(ctx)
		if err != nil {
			return false, err
		}
		if plan, err = CalcPlan(tls, snaps, tl.Timeline, Target{}); err != nil {
			return false, err
		}
	default:
		waiting := int64(tl.LastVersion) - int64(pos.Version) + 1
		s.m.Pending.Set(float64(max(waiting, 0)))
		if waiting > 0 {
			s.m.LagSeconds.Set(float64(time.Now().Unix() - tl.LastTime))
		}
		if waiting <= 0 || (waiting < int64(s.cfg.FoldLines) && !due) {
			return false, nil
		}
		plan = Plan{Timeline: tl, BaseFile: filepath.Join(s.cfg.Dir, "metadata.mfs"), From: pos.Version, To: tl.LastVersion}
	}
	start := time.Now()
	out, err := Apply(ctx, s.js, s.store, plan, Options{Cluster: s.cfg.Cluster, OutDir: s.cfg.Dir, Force: true, Log: s.log})
	if err != nil {
		return false, err
	}
	next := Position{Timeline: tl.Timeline, Version: out.Version}
	if err := writeState(s.statePath(), next); err != nil {
		return false, err
	}
	s.pos.Store(&next)
	took := time.Since(start)
	s.m.Materialized.Set(float64(next.Version))
	s.m.Pending.Set(float64(tl.LastVersion + 1 - next.Version))
	s.m.FoldSeconds.Observe(took.Seconds())
	s.log.Info("materialized", "timeline", next.Timeline, "version", next.Version, "lines", out.Lines, "took", took.Round(time.Millisecond))
	return true, nil
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
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
