package snapshot

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// chunkWriter publishes what is written to it as the chunks of a new object. At most InFlight
// chunks are unacknowledged: Write waits for the oldest acknowledgement beyond that, so memory
// stays at InFlight+1 chunk buffers however fast the source and however slow the server. A
// buffer is reused only once its chunk is acknowledged (a publish may be retried from it).
// Not for concurrent use.
type chunkWriter struct {
	ctx     context.Context
	s       *Store
	pub     jetstream.JetStream // this upload's own publisher: its own window and timeout
	id      string
	subject string
	cur     []byte
	free    [][]byte
	pending []pendingChunk // oldest first
	sum     hash.Hash      // of the stored bytes: the object store's digest
	size    int64
	chunks  uint32
	err     error // the first error; every later call returns it
}

type pendingChunk struct {
	ack jetstream.PubAckFuture
	buf []byte
	n   uint32 // chunk number, from 1
}

func (s *Store) newChunkWriter(ctx context.Context) (*chunkWriter, error) {
	pub, err := jetstream.New(s.js.Conn(),
		jetstream.WithPublishAsyncMaxPending(s.opts.InFlight+1),
		jetstream.WithPublishAsyncTimeout(s.opts.Stall))
	if err != nil {
		return nil, fmt.Errorf("snapshot bucket %s: publisher: %w", s.bucket, err)
	}
	id := newObjectID()
	return &chunkWriter{ctx: ctx, s: s, pub: pub, id: id, subject: chunkSubject(s.bucket, id), sum: sha256.New()}, nil
}

// Write buffers p and publishes every full chunk.
func (w *chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 && w.err == nil {
		if w.cur == nil {
			w.cur = w.buffer()
		}
		k := copy(w.cur[len(w.cur):cap(w.cur)], p)
		w.cur, p, n = w.cur[:len(w.cur)+k], p[k:], n+k
		if len(w.cur) == cap(w.cur) {
			w.err = w.publish()
		}
	}
	return n, w.err
}

// Close publishes the last, partial chunk and waits until every chunk is acknowledged. The
// object is then complete but invisible until its metadata is published.
func (w *chunkWriter) Close() error {
	if w.err == nil && len(w.cur) > 0 {
		w.err = w.publish()
	}
	for w.err == nil && len(w.pending) > 0 {
		w.err = w.waitOldest()
	}
	return w.err
}

// abort removes whatever chunks were stored. Call it when the object will not be completed.
func (w *chunkWriter) abort() error {
	if w.err == nil {
		w.err = fmt.Errorf("snapshot bucket %s: upload aborted", w.s.bucket)
	}
	return w.s.purgeChunks(w.ctx, w.id)
}

// release frees the publisher; call it last, whatever happened.
func (w *chunkWriter) release() { w.pub.CleanupPublisher() }

// info is the object's metadata once Close succeeded.
func (w *chunkWriter) info(name string, metadata map[string]string) *jetstream.ObjectInfo {
	return &jetstream.ObjectInfo{
		ObjectMeta: jetstream.ObjectMeta{Name: name, Metadata: metadata,
			Opts: &jetstream.ObjectMetaOptions{ChunkSize: uint32(w.s.opts.ChunkSize)}},
		Bucket: w.s.bucket,
		NUID:   w.id,
		Size:   uint64(w.size),
		Chunks: w.chunks,
		Digest: formatDigest(w.sum.Sum(nil)),
	}
}

func (w *chunkWriter) buffer() []byte {
	if k := len(w.free); k > 0 {
		b := w.free[k-1]
		w.free = w.free[:k-1]
		return b[:0]
	}
	return make([]byte, 0, w.s.opts.ChunkSize)
}

func (w *chunkWriter) publish() error {
	m := nats.NewMsg(w.subject)
	m.Data = w.cur
	ack, err := w.pub.PublishMsgAsync(m)
	if err != nil {
		return fmt.Errorf("snapshot bucket %s: publish chunk %d: %w", w.s.bucket, w.chunks+1, err)
	}
	w.sum.Write(w.cur)
	w.size += int64(len(w.cur))
	w.chunks++
	w.pending = append(w.pending, pendingChunk{ack: ack, buf: w.cur, n: w.chunks})
	w.cur = nil
	for len(w.pending) >= w.s.opts.InFlight {
		if err := w.waitOldest(); err != nil {
			return err
		}
	}
	return nil
}

func (w *chunkWriter) waitOldest() error {
	p := w.pending[0]
	select {
	case <-p.ack.Ok():
	case err := <-p.ack.Err():
		return fmt.Errorf("snapshot bucket %s: chunk %d not stored: %w", w.s.bucket, p.n, err)
	case <-w.ctx.Done():
		return fmt.Errorf("snapshot bucket %s: chunk %d: %w", w.s.bucket, p.n, w.ctx.Err())
	}
	w.pending = append(w.pending[:0], w.pending[1:]...)
	w.free = append(w.free, p.buf)
	return nil
}
