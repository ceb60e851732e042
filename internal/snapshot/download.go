package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/metafile"
)

// Progress is told the uncompressed bytes written so far and the total.
type Progress func(done, total int64)

// Download streams a snapshot, decompressed, to w and verifies it: the object store's digest
// of the stored bytes, then the uncompressed size and SHA-256. On an error w may have received
// part of the data: use DownloadFile to get all or nothing.
func (s *Store) Download(ctx context.Context, name string, w io.Writer, progress Progress) (Snapshot, error) {
	snap, err := s.Get(ctx, name)
	if err != nil {
		return snap, err
	}
	obj, err := s.obs.Get(ctx, name)
	if err != nil {
		return snap, fmt.Errorf("download %s/%s: %w", s.bucket, name, err)
	}
	defer obj.Close()
	dec, err := zstd.NewReader(obj, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return snap, fmt.Errorf("download %s: %w", name, err)
	}
	defer dec.Close()
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, sum), total: snap.Size, progress: progress}
	if _, err := io.Copy(cw, dec); err != nil {
		if errors.Is(err, jetstream.ErrDigestMismatch) {
			return snap, fmt.Errorf("download %s/%s: stored bytes do not match their digest: %w", s.bucket, name, ErrCorrupt)
		}
		return snap, fmt.Errorf("download %s/%s after %d bytes: %w (%w)", s.bucket, name, cw.n, err, ErrCorrupt)
	}
	if cw.n != snap.Size {
		return snap, fmt.Errorf("download %s/%s: %d bytes, metadata says %d: %w", s.bucket, name, cw.n, snap.Size, ErrCorrupt)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != snap.SHA256 {
		return snap, fmt.Errorf("download %s/%s: SHA-256 %s, metadata says %s: %w", s.bucket, name, got, snap.SHA256, ErrCorrupt)
	}
	return snap, nil
}

// DownloadFile writes a snapshot to path atomically: a temporary file in the same directory,
// verified (digest, then metadata header and end marker), synced and renamed, and the directory
// synced. On any error path is left as it was.
func (s *Store) DownloadFile(ctx context.Context, name, path string, progress Progress) (Snapshot, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return Snapshot{}, fmt.Errorf("download %s: %w", name, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	snap, err := s.Download(ctx, name, tmp, progress)
	if err != nil {
		return snap, err
	}
	h, err := metafile.CheckFile(tmp)
	if err != nil {
		return snap, fmt.Errorf("download %s: %w (%w)", name, err, ErrCorrupt)
	}
	if h.Version != snap.Version || h.MetaID != snap.MetaID {
		return snap, fmt.Errorf("download %s: header says version %d metaid %d, metadata %d and %d: %w", name, h.Version, h.MetaID, snap.Version, snap.MetaID, ErrCorrupt)
	}
	if err := tmp.Sync(); err != nil {
		return snap, fmt.Errorf("download %s: sync %s: %w", name, tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return snap, fmt.Errorf("download %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return snap, fmt.Errorf("download %s: %w", name, err)
	}
	done = true
	return snap, syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

type countWriter struct {
	w        io.Writer
	n, total int64
	progress Progress
	lastMB   int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.progress != nil && (c.n>>24 != c.lastMB || c.n == c.total) {
		c.lastMB = c.n >> 24
		c.progress(c.n, c.total)
	}
	return n, err
}
