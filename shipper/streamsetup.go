package shipper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/stream"
)

// maxMsgBytes bounds one batch message. Batches hold at most MaxBatchBytes of lines before
// compression, and zstd never grows them by more than a few bytes per 128 KB block.
const maxMsgBytes = 8 << 20

// ensureStream creates the cluster's changelog stream, or checks the existing one.
// Retention is not by age: the shipper purges lines only below the oldest retained snapshot,
// so that every retained snapshot can be rolled forward to now.
func ensureStream(ctx context.Context, js jetstream.JetStream, cluster string, replicas int) (jetstream.Stream, error) {
	cfg := jetstream.StreamConfig{
		Name:        stream.StreamName(cluster),
		Description: "mfsha: MooseFS changelog of cluster " + cluster,
		Subjects:    []string{stream.SubjectAll(cluster)},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxMsgSize:  maxMsgBytes,
		Duplicates:  2 * time.Minute,
		AllowDirect: true,
	}
	st, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	return st, nil
}

// tail is the stream's last batch: where shipping resumes.
type tail struct {
	seq  uint64 // stream's last sequence (0: empty)
	info stream.BatchInfo
}

// readTail reads the stream's last batch. A stream whose last message is gone (purged by hand)
// is an error: resuming without it could restart the history at timeline 1. A last batch not
// signed by a key of v is ErrNotSoleWriter naming it: someone else appended, and resuming
// after it would take its headers (versions, last-line hash) for what was shipped, while
// every reader refuses it.
func readTail(ctx context.Context, st jetstream.Stream, v *sign.Verifier) (tail, error) {
	si, err := st.Info(ctx)
	if err != nil {
		return tail{}, fmt.Errorf("stream info: %w", err)
	}
	if si.State.LastSeq == 0 {
		return tail{}, nil
	}
	m, err := st.GetMsg(ctx, si.State.LastSeq)
	if err != nil {
		return tail{}, fmt.Errorf("stream %s: read last message %d: %w", si.Config.Name, si.State.LastSeq, err)
	}
	info, err := stream.ParseBatchHeader(m.Header)
	if err != nil {
		return tail{}, fmt.Errorf("stream %s message %d: %w", si.Config.Name, si.State.LastSeq, err)
	}
	if _, err := stream.VerifyBatch(v, m.Sequence, m.Subject, m.Header, m.Data); err != nil {
		return tail{}, fmt.Errorf("stream %s: its last batch is not the cluster's (%w): %w", si.Config.Name, err, ErrNotSoleWriter)
	}
	return tail{seq: si.State.LastSeq, info: info}, nil
}

// position is where reading resumes after the stream's tail.
func (t tail) position() Position {
	if t.seq == 0 {
		return Position{}
	}
	return Position{Timeline: t.info.Timeline, Next: t.info.LastVersion + 1, PrevHash: t.info.LastLineHash}
}
