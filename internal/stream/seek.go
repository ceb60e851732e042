package stream

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// SeekVersion finds the sequence of the first batch on subj whose last version is at least v,
// or, if none is, of the last batch on subj. 0: subj has no batch. Versions grow with
// sequences on one subject, so it bisects: O(log n) reads.
func SeekVersion(ctx context.Context, st jetstream.Stream, subj string, v uint64) (uint64, error) {
	last, err := st.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("seek version: last batch of %s: %w", subj, err)
	}
	// A last batch with bad headers (see Timeline.BadSeq) counts as holding every version
	// after the good ones: a reader that needs it gets there and reports it.
	info, err := ParseBatchHeader(last.Header)
	if err == nil && info.LastVersion < v {
		return last.Sequence, nil
	}
	best, lo, hi := last.Sequence, uint64(1), last.Sequence
	for lo <= hi {
		mid := lo + (hi-lo)/2
		// The first batch on subj at or after mid: it exists, since the last one is at or after.
		m, err := st.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(subj))
		if err != nil {
			return 0, fmt.Errorf("seek version: batch of %s at or after %d: %w", subj, mid, err)
		}
		bi, err := ParseBatchHeader(m.Header)
		if err != nil && m.Sequence != last.Sequence {
			return 0, fmt.Errorf("seek version: batch %d: %w", m.Sequence, err)
		}
		if m.Sequence == last.Sequence || bi.LastVersion >= v {
			best, hi = m.Sequence, mid-1 // an earlier answer can only be before mid
		} else {
			lo = m.Sequence + 1
		}
	}
	return best, nil
}
