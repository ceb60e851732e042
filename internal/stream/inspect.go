package stream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoStream is returned when the cluster has no changelog stream yet.
var ErrNoStream = errors.New("no changelog stream")

// Timeline is the range one timeline holds in the stream.
type Timeline struct {
	Timeline     uint64
	Parent       uint64 // timeline it forked from, when its first batch is still retained
	FirstVersion uint64
	LastVersion  uint64
	FirstTime    int64
	LastTime     int64
	Batches      uint64
	FirstSeq     uint64 // stream sequence of its first retained batch
	LastSeq      uint64
	MetaID       uint64
}

// Timelines lists the timelines retained in the cluster's stream, oldest first. It reads two
// messages per timeline, whatever the stream's size.
func Timelines(ctx context.Context, js jetstream.JetStream, cluster string) ([]Timeline, error) {
	st, err := js.Stream(ctx, StreamName(cluster))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("cluster %s: %w %s", cluster, ErrNoStream, StreamName(cluster))
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", StreamName(cluster), err)
	}
	si, err := st.Info(ctx, jetstream.WithSubjectFilter(SubjectAll(cluster)))
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", StreamName(cluster), err)
	}
	prefix := "mfsha." + cluster + ".log."
	var out []Timeline
	for subj, n := range si.State.Subjects {
		tl, err := strconv.ParseUint(strings.TrimPrefix(subj, prefix), 10, 64)
		if err != nil || !strings.HasPrefix(subj, prefix) {
			return nil, fmt.Errorf("stream %s: unexpected subject %q", StreamName(cluster), subj)
		}
		first, err := st.GetMsg(ctx, si.State.FirstSeq, jetstream.WithGetMsgSubject(subj))
		if err != nil {
			return nil, fmt.Errorf("stream %s: first message of %s: %w", StreamName(cluster), subj, err)
		}
		last, err := st.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			return nil, fmt.Errorf("stream %s: last message of %s: %w", StreamName(cluster), subj, err)
		}
		fi, err := ParseBatchHeader(first.Header)
		if err != nil {
			return nil, fmt.Errorf("stream %s message %d: %w", StreamName(cluster), first.Sequence, err)
		}
		li, err := ParseBatchHeader(last.Header)
		if err != nil {
			return nil, fmt.Errorf("stream %s message %d: %w", StreamName(cluster), last.Sequence, err)
		}
		if fi.Timeline != tl || li.Timeline != tl {
			return nil, fmt.Errorf("stream %s: subject %s holds batches of timeline %d/%d", StreamName(cluster), subj, fi.Timeline, li.Timeline)
		}
		meta := li.MetaID
		if meta == 0 {
			meta = fi.MetaID
		}
		out = append(out, Timeline{Timeline: tl, Parent: fi.ParentTimeline, FirstVersion: fi.FirstVersion, LastVersion: li.LastVersion,
			FirstTime: fi.FirstTime, LastTime: li.LastTime, Batches: n, FirstSeq: first.Sequence, LastSeq: last.Sequence, MetaID: meta})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Timeline < out[j].Timeline })
	return out, nil
}
