package shipper

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
)

// SnapshotStore is what the shipper needs of the snapshot bucket (snapshot.Store).
type SnapshotStore interface {
	Upload(ctx context.Context, path string, info snapshot.Info) (snapshot.Snapshot, error)
	List(ctx context.Context) ([]snapshot.Snapshot, error)
	Delete(ctx context.Context, name string) error
}

// uploadLoop uploads every new snapshot the MooseFS process renames into place, once the stream
// holds the line of its version (so it can be rolled forward and its timeline is that line's),
// then applies retention. It returns when ctx ends.
func (s *Shipper) uploadLoop(ctx context.Context, trigger <-chan struct{}) {
	poll := time.NewTicker(s.cfg.SnapshotPoll)
	defer poll.Stop()
	done := map[string]bool{} // file identity already uploaded
	for {
		s.uploadNew(ctx, done)
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		case <-poll.C:
		}
	}
}

func (s *Shipper) uploadNew(ctx context.Context, done map[string]bool) {
	for _, n := range s.cfg.Kind.SnapshotNames() {
		path := filepath.Join(s.cfg.DataDir, n)
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		key := fmt.Sprintf("%s:%d:%d", n, fi.Size(), fi.ModTime().UnixNano())
		if done[key] {
			continue
		}
		h, err := metafile.Check(path)
		if err != nil {
			s.m.Errors.WithLabelValues("snapshot").Inc()
			s.log.Warn("snapshot not uploaded: not a complete metadata file", "err", err)
			done[key] = true
			continue
		}
		if h.New {
			done[key] = true
			continue
		}
		// Upload once line Version itself is shipped: then every line below it is in the stream,
		// and the timeline of that line is the snapshot's. (A master started from restored
		// metadata has this file at its start, while the stream is still on the old timeline;
		// its first change puts both on the new one.)
		timeline, ok := s.timelineOf(h.Version)
		if !ok {
			s.snapWaits.Store(h.Version)
			s.log.Debug("snapshot waits for its line to be shipped from these files", "file", n, "version", h.Version, "shipped", s.Shipped())
			continue
		}
		s.snapWaits.CompareAndSwap(h.Version, 0)
		start := time.Now()
		snap, err := s.cfg.Snapshots.Upload(ctx, path, snapshot.Info{Timeline: timeline, Time: fi.ModTime().Unix(), Source: s.cfg.Source + ":" + n})
		if err != nil {
			if ctx.Err() == nil {
				s.m.Errors.WithLabelValues("snapshot").Inc()
				s.log.Error("snapshot upload failed; will retry", "file", path, "err", err)
			}
			continue
		}
		done[key] = true
		s.m.SnapshotVersion.Set(float64(snap.Version))
		s.m.SnapshotUploads.Inc()
		s.m.SnapshotBytes.Add(float64(snap.Size))
		s.log.Info("snapshot uploaded", "name", snap.Name, "version", snap.Version, "bytes", snap.Size,
			"compressed", snap.CompressedSize, "took", time.Since(start).Round(time.Millisecond))
		if s.cfg.Retention > 0 {
			if err := s.applyRetention(ctx); err != nil && ctx.Err() == nil {
				s.m.Errors.WithLabelValues("snapshot").Inc()
				s.log.Error("retention", "err", err)
			}
		}
	}
}

// timelineOf tells which timeline a snapshot of version v belongs to, once this shipper has
// shipped line v from these files: the timeline of the run of lines that holds v. A version
// before everything shipped in this run belongs to the timeline the run began on (resumed
// after the stream's last line, found in these files by its hash). Not known (false) while
// line v is not shipped: a stream position alone says nothing of which history the files hold.
func (s *Shipper) timelineOf(v uint64) (uint64, bool) {
	if s.Shipped().Next <= v {
		return 0, false
	}
	s.segsMu.Lock()
	defer s.segsMu.Unlock()
	if len(s.segs) == 0 {
		return 0, false
	}
	for i := len(s.segs) - 1; i >= 0; i-- {
		if s.segs[i].from <= v {
			return s.segs[i].timeline, true
		}
	}
	return s.segs[0].timeline, true
}

// applyRetention deletes the snapshots retention drops (snapshot.PlanPrune), then purges, per
// timeline, the changelog batches below the one holding that timeline's base snapshot
// (snapshot.PurgePoints): every moment of the window stays restorable on every timeline.
//
// Safety: a purge names one timeline's subject and a sequence found on it, so it never takes
// lines of another timeline, whose batches interleave with or follow it in the stream. Purging
// the whole stream below the oldest kept snapshot by time took, when a forked timeline's base
// carried an older time, every line of the other timelines; and purging below a snapshot taken
// inside the window took the lines of the window's first moments.
func (s *Shipper) applyRetention(ctx context.Context) error {
	now := time.Now()
	snaps, err := s.cfg.Snapshots.List(ctx)
	if err != nil {
		return err
	}
	keep, drop := snapshot.PlanPrune(snaps, now, s.cfg.Retention)
	for _, d := range drop {
		if err := s.cfg.Snapshots.Delete(ctx, d.Name); err != nil {
			return err
		}
		s.log.Info("snapshot dropped by retention", "name", d.Name)
	}
	points := snapshot.PurgePoints(keep, now, s.cfg.Retention)
	if len(points) == 0 {
		return nil
	}
	st, err := s.js.Stream(ctx, stream.StreamName(s.cfg.Cluster))
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	timelines := make([]uint64, 0, len(points))
	for tl := range points {
		timelines = append(timelines, tl)
	}
	slices.Sort(timelines)
	for _, tl := range timelines {
		base := points[tl]
		subj := stream.Subject(s.cfg.Cluster, tl)
		q, err := stream.SeekVersion(ctx, st, subj, base.Version)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		if q == 0 {
			continue
		}
		if err := st.Purge(ctx, jetstream.WithPurgeSubject(subj), jetstream.WithPurgeSequence(q)); err != nil {
			return fmt.Errorf("retention: purge %s below %d: %w", subj, q, err)
		}
		s.log.Debug("changelog purged below the base snapshot", "timeline", tl, "base", base.Name, "below_seq", q)
	}
	return nil
}
