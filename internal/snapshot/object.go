package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The object store's layout on its stream (NATS ADR-20, as nats.go's jetstream/object.go
// writes it): chunks of an object on one subject named by a unique id, and one metadata message
// per object name, a JSON jetstream.ObjectInfo, kept alone on its subject by a rollup header.
// Tests check that nats.go's ObjectStore reads what this package writes and the other way
// round.

func streamName(bucket string) string       { return "OBJ_" + bucket }
func chunkSubject(bucket, id string) string { return "$O." + bucket + ".C." + id }
func metaSubject(bucket, name string) string {
	return "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
}

// digestPrefix starts ObjectInfo.Digest: the SHA-256 of the stored (compressed) bytes.
const digestPrefix = "SHA-256="

func formatDigest(sum []byte) string { return digestPrefix + base64.URLEncoding.EncodeToString(sum) }

// newObjectID makes the id of a new object's chunk subject (nats.go uses a NUID; any unique
// subject token will do).
func newObjectID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// lookup reads the metadata message of name, deleted or not, and the sequence that holds it
// (for a compare-and-set publish). It is ErrNotFound if there is none, ErrCorrupt if it is not
// an object's metadata.
func (s *Store) lookup(ctx context.Context, name string) (*jetstream.ObjectInfo, uint64, error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, metaSubject(s.bucket, name))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, fmt.Errorf("snapshot %s/%s: %w", s.bucket, name, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot %s/%s: %w", s.bucket, name, err)
	}
	var oi jetstream.ObjectInfo
	if err := json.Unmarshal(m.Data, &oi); err != nil {
		return nil, 0, fmt.Errorf("snapshot object %s/%s: metadata message %d: %v: %w", s.bucket, name, m.Sequence, err, ErrCorrupt)
	}
	if oi.Name != name {
		return nil, 0, fmt.Errorf("snapshot object %s/%s: metadata message %d names %q: %w", s.bucket, name, m.Sequence, oi.Name, ErrCorrupt)
	}
	oi.ModTime = m.Time
	return &oi, m.Sequence, nil
}

// errRaced: the compare-and-set publish of an object's metadata found another one stored.
var errRaced = errors.New("another writer stored this object first")

// publishMeta stores an object's metadata, which makes it visible, if and only if the last
// metadata message of that name is still at sequence prev (0: there is none). Otherwise it
// is errRaced.
func (s *Store) publishMeta(ctx context.Context, oi *jetstream.ObjectInfo, prev uint64) error {
	data, err := json.Marshal(oi)
	if err != nil {
		return fmt.Errorf("snapshot object %s/%s: %w", s.bucket, oi.Name, err)
	}
	m := nats.NewMsg(metaSubject(s.bucket, oi.Name))
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Data = data
	ctx, cancel := context.WithTimeout(ctx, s.opts.Stall)
	defer cancel()
	_, err = s.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(prev))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return fmt.Errorf("snapshot object %s/%s: %w", s.bucket, oi.Name, errRaced)
	}
	if err != nil {
		return fmt.Errorf("snapshot object %s/%s: store metadata: %w", s.bucket, oi.Name, err)
	}
	return nil
}

// purgeChunks removes the chunks of an object that will not be completed. It runs even when
// ctx has ended, for a short while, so that a cancelled upload leaves nothing behind.
func (s *Store) purgeChunks(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(chunkSubject(s.bucket, id))); err != nil {
		return fmt.Errorf("snapshot bucket %s: purge chunks %s: %w", s.bucket, id, err)
	}
	return nil
}
