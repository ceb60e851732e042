package failover

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/restorer"
)

// StreamHistory is the History of a cluster's JetStream stream.
type StreamHistory struct {
	JS       jetstream.JetStream
	Cluster  string
	Verifier *sign.Verifier // trusted keys: lines are read from verified batches only
}

// Newest returns the newest retained timeline; ok false when the stream is empty or absent.
func (h StreamHistory) Newest(ctx context.Context) (stream.Timeline, bool, error) {
	tls, err := stream.Timelines(ctx, h.JS, h.Cluster)
	if errors.Is(err, stream.ErrNoStream) {
		return stream.Timeline{}, false, nil
	}
	if err != nil {
		return stream.Timeline{}, false, err
	}
	if len(tls) == 0 {
		return stream.Timeline{}, false, nil
	}
	return tls[len(tls)-1], true, nil
}

// LineHash reads one line of tl from the stream and returns its stream.LineHash.
func (h StreamHistory) LineHash(ctx context.Context, tl stream.Timeline, version uint64) (uint64, error) {
	return restorer.LineHash(ctx, h.JS, h.Verifier, h.Cluster, tl, version)
}
