package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// chunkReader reads an object's stored bytes in order, asking the server for at most
// ReadAhead bytes ahead of use. It fails with ErrCorrupt, before anything is read, when chunks
// are missing, and at the end when the number of chunks, the size or the object store's digest
// is not what the metadata says: it returns io.EOF only for an intact object. Not for
// concurrent use; Close it.
type chunkReader struct {
	ctx    context.Context
	s      *Store
	oi     *jetstream.ObjectInfo
	digest []byte
	it     jetstream.MessagesContext // nil when the object has no chunks
	cur    []byte
	chunks uint32
	size   int64
	sum    hash.Hash
	err    error // sticky, io.EOF at the end of an intact object
}

// storedChunks counts the chunks stored under the object oi names.
func (s *Store) storedChunks(ctx context.Context, oi *jetstream.ObjectInfo) (uint64, error) {
	subj := chunkSubject(s.bucket, oi.NUID)
	si, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return 0, fmt.Errorf("snapshot object %s/%s: count chunks: %w", s.bucket, oi.Name, err)
	}
	return si.State.Subjects[subj], nil
}

// chunksComplete reports whether every chunk of the object oi names is stored.
func (s *Store) chunksComplete(ctx context.Context, oi *jetstream.ObjectInfo) (bool, error) {
	have, err := s.storedChunks(ctx, oi)
	return oi.NUID != "" && have == uint64(oi.Chunks), err
}

func (s *Store) openChunks(ctx context.Context, oi *jetstream.ObjectInfo) (*chunkReader, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("snapshot object %s/%s: %s: %w", s.bucket, oi.Name, fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if oi.Opts != nil && oi.Opts.Link != nil {
		return nil, corrupt("is a link, not an object")
	}
	if oi.NUID == "" {
		return nil, corrupt("metadata has no chunk id")
	}
	b64, ok := strings.CutPrefix(oi.Digest, digestPrefix)
	digest, err := base64.URLEncoding.DecodeString(b64)
	if !ok || err != nil || len(digest) != sha256.Size {
		return nil, corrupt("metadata digest %q is not %s<base64 URL>", oi.Digest, digestPrefix)
	}
	r := &chunkReader{ctx: ctx, s: s, oi: oi, digest: digest, sum: sha256.New()}
	subj := chunkSubject(s.bucket, oi.NUID)
	have, err := s.storedChunks(ctx, oi)
	if err != nil {
		return nil, err
	}
	if have != uint64(oi.Chunks) {
		return nil, corrupt("%d of its %d chunks are stored", have, oi.Chunks)
	}
	if oi.Chunks == 0 {
		return r, nil
	}
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return nil, fmt.Errorf("snapshot object %s/%s: read chunks: %w", s.bucket, oi.Name, err)
	}
	// A number of messages, not PullMaxBytes: that one makes nats.go allocate a channel of a
	// million messages (8 MB).
	chunkSize := int(oi.Size)
	if oi.Opts != nil && oi.Opts.ChunkSize > 0 {
		chunkSize = int(oi.Opts.ChunkSize)
	}
	ahead := max(2, s.opts.ReadAhead/max(chunkSize, 1))
	if r.it, err = cons.Messages(jetstream.PullMaxMessages(ahead)); err != nil {
		return nil, fmt.Errorf("snapshot object %s/%s: read chunks: %w", s.bucket, oi.Name, err)
	}
	return r, nil
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 && r.err == nil {
		if r.chunks == r.oi.Chunks {
			r.err = r.verify()
			break
		}
		r.err = r.next()
	}
	if len(r.cur) == 0 {
		return 0, r.err
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (r *chunkReader) next() error {
	ctx, cancel := context.WithTimeout(r.ctx, r.s.opts.Stall)
	defer cancel()
	m, err := r.it.Next(jetstream.NextContext(ctx))
	if err != nil && r.ctx.Err() != nil {
		err = r.ctx.Err()
	} else if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("nothing received for %s: %w", r.s.opts.Stall, err)
	}
	if err != nil {
		return fmt.Errorf("snapshot object %s/%s: chunk %d of %d: %w", r.s.bucket, r.oi.Name, r.chunks+1, r.oi.Chunks, err)
	}
	md, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("snapshot object %s/%s: chunk %d of %d: %w", r.s.bucket, r.oi.Name, r.chunks+1, r.oi.Chunks, err)
	}
	r.cur = m.Data()
	r.chunks++
	r.size += int64(len(r.cur))
	r.sum.Write(r.cur)
	if md.NumPending == 0 && r.chunks < r.oi.Chunks {
		return fmt.Errorf("snapshot object %s/%s: stored chunks end at chunk %d of %d: %w", r.s.bucket, r.oi.Name, r.chunks, r.oi.Chunks, ErrCorrupt)
	}
	return nil
}

func (r *chunkReader) verify() error {
	if r.size != int64(r.oi.Size) {
		return fmt.Errorf("snapshot object %s/%s: %d stored bytes, metadata says %d: %w", r.s.bucket, r.oi.Name, r.size, r.oi.Size, ErrCorrupt)
	}
	if !bytes.Equal(r.sum.Sum(nil), r.digest) {
		return fmt.Errorf("snapshot object %s/%s: stored bytes do not match the object digest %s: %w", r.s.bucket, r.oi.Name, r.oi.Digest, ErrCorrupt)
	}
	return io.EOF
}

// Close stops reading; it does not verify anything.
func (r *chunkReader) Close() {
	if r.it != nil {
		r.it.Stop()
	}
	if r.err == nil {
		r.err = errors.New("chunk reader closed")
	}
}
