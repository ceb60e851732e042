package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PurgeOrphans removes chunks that no object refers to and that are older than minAge: what an
// upload leaves when its process dies between its first chunk and its metadata (a failed
// upload that lives on purges its own). An upload in progress is not an orphan yet: its newest
// chunk is younger than Stall, so a minAge of an hour or more is safe. It returns how many
// chunk subjects it purged.
func (s *Store) PurgeOrphans(ctx context.Context, minAge time.Duration) (int, error) {
	used := map[string]bool{}
	metas := metaSubject(s.bucket, "")
	si, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(metas+">"))
	if err != nil {
		return 0, fmt.Errorf("purge orphans in %s: %w", s.bucket, err)
	}
	for subj := range si.State.Subjects {
		m, err := s.stream.GetLastMsgForSubject(ctx, subj)
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, fmt.Errorf("purge orphans in %s: %w", s.bucket, err)
		}
		var oi jetstream.ObjectInfo
		if err == nil && json.Unmarshal(m.Data, &oi) == nil {
			used[oi.NUID] = true
		} else if err == nil {
			// Unreadable metadata might still name chunks: keep everything until it is fixed.
			return 0, fmt.Errorf("purge orphans in %s: metadata subject %s is not an object's metadata: %w", s.bucket, subj, ErrCorrupt)
		}
	}
	// Chunks are listed after the metadata: those of an upload that completes in between are
	// not in used, but they are younger than minAge.
	chunks := chunkSubject(s.bucket, "")
	si, err = s.stream.Info(ctx, jetstream.WithSubjectFilter(chunks+">"))
	if err != nil {
		return 0, fmt.Errorf("purge orphans in %s: %w", s.bucket, err)
	}
	purged := 0
	for subj := range si.State.Subjects {
		id, _ := strings.CutPrefix(subj, chunks)
		if used[id] {
			continue
		}
		last, err := s.stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return purged, fmt.Errorf("purge orphans in %s: %w", s.bucket, err)
		}
		if time.Since(last.Time) < minAge {
			continue
		}
		if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return purged, fmt.Errorf("purge orphans in %s: %s: %w", s.bucket, subj, err)
		}
		purged++
	}
	return purged, nil
}
