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
	// BadSeq, when not 0, is the stream sequence of the first of the timeline's last batches
	// whose headers do not parse (BadErr says why): the range above ends before it. Versions
	// before it stay restorable; nothing at or after it is trusted.
	BadSeq uint64
	BadErr string
	Writer string // Mfsha-Writer of the newest batch: the mfsha that wrote it ("" before 0.1.0)
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
		var badSeq uint64
		var badErr string
		if err != nil {
			// One bad last batch must not hide the versions before it: the timeline ends at the
			// last good batch, and the bad one is reported by its sequence.
			badSeq, badErr = last.Sequence, err.Error()
			if last, li, badSeq, badErr, err = lastGoodBefore(ctx, st, subj, first.Sequence, badSeq, badErr); err != nil {
				return nil, fmt.Errorf("stream %s: %s: %w", StreamName(cluster), subj, err)
			}
		}
		if fi.Timeline != tl || li.Timeline != tl {
			return nil, fmt.Errorf("stream %s: subject %s holds batches of timeline %d/%d", StreamName(cluster), subj, fi.Timeline, li.Timeline)
		}
		meta := li.MetaID
		if meta == 0 {
			meta = fi.MetaID
		}
		out = append(out, Timeline{Timeline: tl, Parent: fi.ParentTimeline, FirstVersion: fi.FirstVersion, LastVersion: li.LastVersion,
			FirstTime: fi.FirstTime, LastTime: li.LastTime, Batches: n, FirstSeq: first.Sequence, LastSeq: last.Sequence, MetaID: meta, BadSeq: badSeq, BadErr: badErr, Writer: li.Writer})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Timeline < out[j].Timeline })
	return out, nil
}

// lastGoodBefore finds the newest batch on subj below sequence bad whose headers parse, from
// sequence first (whose headers parse) on, and the oldest bad batch after it with its error.
// It bisects for each step back: O(log n) reads per bad batch skipped.
func lastGoodBefore(ctx context.Context, st jetstream.Stream, subj string, first, bad uint64, badErr string) (*jetstream.RawStreamMsg, BatchInfo, uint64, string, error) {
	for bad > first {
		m, err := prevOnSubject(ctx, st, subj, first, bad)
		if err != nil {
			return nil, BatchInfo{}, 0, "", err
		}
		info, err := ParseBatchHeader(m.Header)
		if err == nil {
			return m, info, bad, badErr, nil
		}
		bad, badErr = m.Sequence, err.Error()
	}
	return nil, BatchInfo{}, 0, "", fmt.Errorf("no batch with good headers before message %d", bad)
}

// prevOnSubject returns the last message on subj with a sequence in [first, before); one
// exists at first.
func prevOnSubject(ctx context.Context, st jetstream.Stream, subj string, first, before uint64) (*jetstream.RawStreamMsg, error) {
	var best *jetstream.RawStreamMsg
	lo, hi := first, before-1
	for lo <= hi {
		mid := lo + (hi-lo)/2
		m, err := st.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(subj))
		if err != nil {
			return nil, fmt.Errorf("message at or after %d: %w", mid, err)
		}
		if m.Sequence < before {
			best, lo = m, m.Sequence+1
		} else {
			hi = mid - 1
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no message before %d", before)
	}
	return best, nil
}
