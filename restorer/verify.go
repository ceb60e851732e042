package restorer

import (
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/stream"
)

// ErrStaleEpoch: a batch carries a fencing epoch older than one already read from the stream.
var ErrStaleEpoch = errors.New("batch from a fenced writer")

// errNoTrustedKeys: a reader was given no public key. There is no unverified mode.
var errNoTrustedKeys = errors.New("TRUSTED_KEYS: not set: batches and snapshots are verified against the cluster's public keys (make them with mfsha init)")

// batchCheck is what every batch read from the stream passes before any of its lines is used:
// its signature by a trusted key (stream.VerifyBatch: headers, subject and payload), then its
// epoch. It is safe for concurrent use (a standby's follower and folder share one).
//
// Epochs: the shipper of a leased master puts the lease revision it holds in every batch
// (stream.HdrEpoch); a new lease holder has a higher one. A batch with an epoch below the
// highest already read comes from a master that lost its lease (fenced) and is refused, along
// with everything after it on that read, so nothing of a fenced master reaches mfsmaster. Epoch
// 0 means a writer without a lease (plain `mfsha ship`, no failover): it cannot be fenced, so
// it is neither compared nor does it lower the highest epoch seen. The highest epoch is held
// by the reader for its lifetime (a standby keeps it across rounds and resynchronizations);
// the single-writer rule of the stream (expected last sequence) keeps a fenced master's
// batches out in the first place; this check is the reader's own guard behind it.
type batchCheck struct {
	v *sign.Verifier

	mu       sync.Mutex
	epoch    uint64 // highest epoch read so far
	epochSeq uint64 // the message that carried it
	epochSub string
}

func newBatchCheck(v *sign.Verifier) (*batchCheck, error) {
	if v == nil {
		return nil, errNoTrustedKeys
	}
	return &batchCheck{v: v}, nil
}

// check verifies m and its epoch; the error names the stream message (sequence, subject).
func (c *batchCheck) check(m *jetstream.RawStreamMsg) error {
	info, err := stream.VerifyBatch(c.v, m.Sequence, m.Subject, m.Header, m.Data)
	if err != nil {
		return err
	}
	if info.Epoch == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if info.Epoch < c.epoch {
		return fmt.Errorf("stream message %d (%s, versions %d..%d): epoch %d is older than epoch %d of stream message %d (%s): %w",
			m.Sequence, m.Subject, info.FirstVersion, info.LastVersion, info.Epoch, c.epoch, c.epochSeq, c.epochSub, ErrStaleEpoch)
	}
	if info.Epoch > c.epoch {
		c.epoch, c.epochSeq, c.epochSub = info.Epoch, m.Sequence, m.Subject
	}
	return nil
}
