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

	"github.com/mfsha/mfsha/internal/durable"
)

// Progress is told the uncompressed bytes written so far and the total, every few megabytes
// and once at the end. It is called from the downloading goroutine.
type Progress func(done, total int64)

// progressStep is how many bytes pass between two Progress calls.
const progressStep = 4 << 20

// Download streams a snapshot, decompressed, to w, and verifies as it goes: the stored chunks
// (all present, the object store's digest), the uncompressed size and SHA-256 against the
// metadata, and the metadata file's signature, end marker, version and metaid. The object's
// metadata must first carry a signature by a trusted key (see WithVerifier): otherwise nothing
// is read and the error names the object and wraps sign.ErrUnsigned, sign.ErrUntrusted or
// sign.ErrBadSignature. It is
// ErrNotFound if no snapshot is stored under name, ErrCorrupt (naming the object and what is
// wrong) if any check fails. On an error w may have received part of the data: use
// DownloadFile to get all or nothing. progress may be nil.
func (s *Store) Download(ctx context.Context, name string, w io.Writer, progress Progress) (Snapshot, error) {
	oi, _, err := s.lookup(ctx, name)
	if err == nil && oi.Deleted {
		err = fmt.Errorf("snapshot %s/%s: %w", s.bucket, name, ErrNotFound)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("download: %w", err)
	}
	snap, err := fromInfo(oi)
	if err != nil {
		return snap, fmt.Errorf("download: %w", err)
	}
	if err := s.verify(oi, snap); err != nil {
		return snap, fmt.Errorf("download: %w", err)
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("download %s/%s: %s: %w", s.bucket, name, fmt.Sprintf(format, args...), ErrCorrupt)
	}
	chunks, err := s.openChunks(ctx, oi)
	if err != nil {
		return snap, fmt.Errorf("download: %w", err)
	}
	defer chunks.Close()
	dec, err := zstd.NewReader(chunks, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(MaxWindow))
	if err != nil {
		return snap, fmt.Errorf("download %s/%s: %w", s.bucket, name, err)
	}
	defer dec.Close()
	sum, check := sha256.New(), &fileCheck{}
	pw := &progressWriter{total: snap.Size, progress: progress}
	dst := &errWriter{w: w}
	// One byte more than the metadata says is enough to know the size is wrong.
	n, err := io.Copy(io.MultiWriter(dst, sum, check, pw), io.LimitReader(dec, snap.Size+1))
	switch {
	case dst.err != nil:
		return snap, fmt.Errorf("download %s/%s: write: %w", s.bucket, name, dst.err)
	case chunks.err != nil && chunks.err != io.EOF: // already names the object; ErrCorrupt or not
		return snap, fmt.Errorf("download: %w", chunks.err)
	case err != nil && ctx.Err() != nil:
		return snap, fmt.Errorf("download %s/%s: %w", s.bucket, name, ctx.Err())
	case err != nil:
		// Either the stored bytes were damaged, or they are intact but are not what was
		// compressed. Reading to the end tells which: it checks the object store's digest.
		if _, derr := io.Copy(io.Discard, chunks); derr != nil && errors.Is(derr, ErrCorrupt) {
			return snap, fmt.Errorf("download: decompress failed after %d bytes (%v): %w", n, err, derr)
		}
		return snap, corrupt("decompress, after %d bytes: %v", n, err)
	case n != snap.Size:
		return snap, corrupt("%d bytes, metadata says %d", n, snap.Size)
	}
	// The decoder may stop at the end of its frame: whatever is stored beyond is corrupt, and
	// reading to the end makes the chunk reader verify the object's digest.
	if extra, err := io.Copy(io.Discard, chunks); err != nil {
		return snap, fmt.Errorf("download: %w", err)
	} else if extra > 0 {
		return snap, corrupt("%d stored bytes follow the compressed data", extra)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != snap.SHA256 {
		return snap, corrupt("SHA-256 %s, metadata says %s", got, snap.SHA256)
	}
	h, err := check.check()
	if err != nil {
		return snap, corrupt("content: %v", err)
	}
	if h.Version != snap.Version || h.MetaID != snap.MetaID {
		return snap, corrupt("file header says version %d metaid %d, metadata says version %d metaid %d", h.Version, h.MetaID, snap.Version, snap.MetaID)
	}
	pw.done()
	return snap, nil
}

// errWriter remembers the error of the writer it wraps.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// DownloadFile writes a snapshot to path atomically: into a temporary file in the same
// directory, verified as Download does, synced, renamed over path (mode 0640, as mfsmaster
// writes its own), and the directory synced. On any error path is left as it was and the
// temporary file is removed.
func (s *Store) DownloadFile(ctx context.Context, name, path string, progress Progress) (snap Snapshot, err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return Snapshot{}, fmt.Errorf("download %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o640); err != nil { // as mfsmaster writes its metadata files
		return Snapshot{}, fmt.Errorf("download %s: %w", name, err)
	}
	if snap, err = s.Download(ctx, name, tmp, progress); err != nil {
		return snap, err
	}
	if err := tmp.Sync(); err != nil {
		return snap, fmt.Errorf("download %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return snap, fmt.Errorf("download %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return snap, fmt.Errorf("download %s: %w", name, err)
	}
	return snap, durable.SyncDir(dir)
}

// progressWriter counts bytes and calls progress every progressStep bytes.
type progressWriter struct {
	n, total, next int64
	progress       Progress
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.progress != nil && p.n >= p.next {
		p.progress(p.n, p.total)
		p.next = p.n + progressStep
	}
	return len(b), nil
}

// done makes the final call, unless the last one already said everything was written.
func (p *progressWriter) done() {
	if p.progress != nil && p.next-progressStep != p.n {
		p.progress(p.n, p.total)
	}
}
