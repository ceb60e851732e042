package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/moosefs"
	"github.com/mfsha/mfsha/internal/stream"
)

// Upload stores the metadata file at path as stream.SnapshotName(info.Timeline, version),
// zstd-compressed, with its size and SHA-256, signed (see WithSigner; without a signer it fails
// before reading anything), in one pass over the file.
//
//   - The file is checked first (metafile.CheckFile: header and end marker). A file that is
//     not a complete metadata file is refused before anything is sent; the error names the
//     file and wraps metafile.ErrSignature or metafile.ErrTruncated.
//   - Everything is read from one open descriptor: the master may rename the file away or
//     put another in its place meanwhile. The bytes streamed are checked again as they pass;
//     if the file shrank or changed under it, Upload fails naming the file.
//   - It is idempotent: when the same file (same size and SHA-256) is already stored under
//     that name, nothing is sent and the stored snapshot is returned, with its stored Time and
//     Source; only its metadata is signed again when it is not signed by this store's key.
//     This costs one read of the file. A different file under that name is ErrConflict,
//     returned with the stored snapshot; a stored object with bad metadata is ErrCorrupt. The
//     same file stored without all its chunks is stored again in its place.
//   - On any error nothing is stored: chunks already sent are purged, and the snapshot becomes
//     visible only with its complete metadata. When the metadata's publish fails after the
//     server may have stored it (a cancelled context), the store is asked which it was before
//     anything is purged. Of concurrent uploads of one name, one stores it and the others
//     behave as if it was there before.
func (s *Store) Upload(ctx context.Context, path string, info Info) (Snapshot, error) {
	if info.Timeline == 0 {
		return Snapshot{}, fmt.Errorf("upload %s: timeline 0: timelines start at 1", path)
	}
	if s.signer == nil {
		return Snapshot{}, fmt.Errorf("upload %s: %w", path, errNoSigner)
	}
	f, err := os.Open(path)
	if err != nil {
		return Snapshot{}, fmt.Errorf("upload: %w", err)
	}
	defer f.Close()
	h, err := metafile.CheckFile(f)
	if err != nil {
		return Snapshot{}, fmt.Errorf("upload: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return Snapshot{}, fmt.Errorf("upload: %w", err)
	}
	src := source{f: f, path: path, size: st.Size(), header: h}
	name := stream.SnapshotName(info.Timeline, h.Version)
	for attempt := 1; ; attempt++ {
		oi, prev, err := s.lookup(ctx, name)
		switch {
		case err == nil && !oi.Deleted:
			have, err := fromInfo(oi)
			if err != nil {
				return Snapshot{}, fmt.Errorf("upload %s: %w", path, err)
			}
			if err := src.same(have); err != nil {
				return have, err
			}
			// The same file, but its chunks not all stored (an upload cut short before the
			// fix in put, or chunks lost): store it again in its place, or standbys that
			// need it fail on it until it ages out.
			if complete, err := s.chunksComplete(ctx, oi); err != nil {
				return Snapshot{}, fmt.Errorf("upload %s: %w", path, err)
			} else if !complete {
				snap, err := s.put(ctx, &src, name, info, prev)
				if errors.Is(err, errRaced) && attempt < 3 {
					continue
				}
				if err == nil && oi.NUID != "" {
					// What is left of the old chunks: if this fails, PurgeOrphans finds them.
					_ = s.purgeChunks(ctx, oi.NUID)
				}
				return snap, err
			}
			if s.signedByUs(oi, have) {
				return have, nil
			}
			// The same file, stored unsigned (before signatures existed) or signed by another
			// key (a rotation): sign its metadata with ours, so that readers take it. The
			// chunks stay; a download still checks them against the size and SHA-256 signed.
			err = s.resign(ctx, oi, have, prev)
			if errors.Is(err, errRaced) && attempt < 3 {
				continue
			}
			if err != nil {
				return have, fmt.Errorf("upload %s: %w", path, err)
			}
			return have, nil
		case err == nil: // a deleted object's marker: replace it
		case errors.Is(err, ErrNotFound):
			prev = 0
		default:
			return Snapshot{}, fmt.Errorf("upload %s: %w", path, err)
		}
		snap, err := s.put(ctx, &src, name, info, prev)
		if errors.Is(err, errRaced) && attempt < 3 {
			continue // stored meanwhile by another uploader: compare with it
		}
		return snap, err
	}
}

// source is the open metadata file an upload reads.
type source struct {
	f      *os.File
	path   string
	size   int64
	header metafile.Header
	sha256 string // hex, once read
}

// same is nil when the stored snapshot have is this file, else ErrConflict.
func (src *source) same(have Snapshot) error {
	if have.Size == src.size && src.sha256 == "" {
		sum := sha256.New()
		if _, err := io.Copy(sum, io.NewSectionReader(src.f, 0, src.size)); err != nil {
			return fmt.Errorf("upload %s: %w", src.path, err)
		}
		src.sha256 = hex.EncodeToString(sum.Sum(nil))
	}
	if have.Size != src.size || have.SHA256 != src.sha256 {
		return fmt.Errorf("upload %s as %s: %w (stored: %d bytes, SHA-256 %s; file: %d bytes, SHA-256 %s)",
			src.path, have.Name, ErrConflict, have.Size, have.SHA256, src.size, src.sha256)
	}
	return nil
}

// put streams the file into a new object and publishes its metadata if the last metadata
// message of name is still at sequence prev; otherwise it is errRaced. On any error the
// chunks are purged.
func (s *Store) put(ctx context.Context, src *source, name string, info Info, prev uint64) (snap Snapshot, err error) {
	w, err := s.newChunkWriter(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	defer w.release()
	defer func() {
		if err != nil {
			if perr := w.abort(); perr != nil {
				err = fmt.Errorf("%w (and %w)", err, perr)
			}
		}
	}()
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(s.opts.Level), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(s.opts.Window), zstd.WithEncoderCRC(true))
	if err != nil {
		return Snapshot{}, fmt.Errorf("upload %s: %w", src.path, err)
	}
	sum, check := sha256.New(), &fileCheck{}
	n, err := io.Copy(enc, io.TeeReader(io.NewSectionReader(src.f, 0, src.size), io.MultiWriter(sum, check)))
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("upload %s to %s/%s: %w", src.path, s.bucket, name, err)
	}
	if n != src.size {
		return Snapshot{}, fmt.Errorf("upload %s: read %d bytes, the file had %d: it changed while read", src.path, n, src.size)
	}
	if h, err := check.check(); err != nil {
		return Snapshot{}, fmt.Errorf("metadata file %s: changed while read: %w", src.path, err)
	} else if h != src.header {
		return Snapshot{}, fmt.Errorf("metadata file %s: changed while read: header %+v, was %+v", src.path, h, src.header)
	}
	if err := w.Close(); err != nil {
		return Snapshot{}, fmt.Errorf("upload %s to %s/%s: %w", src.path, s.bucket, name, err)
	}
	src.sha256 = hex.EncodeToString(sum.Sum(nil))
	snap = Snapshot{Name: name, Timeline: info.Timeline, Version: src.header.Version, MetaID: src.header.MetaID,
		Time: info.Time, Size: src.size, CompressedSize: w.size, SHA256: src.sha256, Source: info.Source}
	// Which MooseFS wrote it, for status and restore --list; a fold checks the file itself.
	if secs, err := moosefs.ReadSections(src.f, src.size, src.path); err == nil {
		snap.MooseFS = moosefs.Needs(secs).Release()
	}
	md := snap.metadata()
	s.signMetadata(snap, md)
	if err := s.publishMeta(ctx, w.info(name, md), prev); err != nil {
		// An error may come after the server stored the metadata (the context ended, or the
		// acknowledgement was lost): purging the chunks then would leave a visible object
		// without them, which no standby can download and no later upload replaced (seen when
		// a promotion's first shipper was stopped during an upload). Ask which it was.
		if !errors.Is(err, errRaced) && s.settle(ctx, w.info(name, md), prev) {
			return snap, nil
		}
		return Snapshot{}, fmt.Errorf("upload %s: %w", src.path, err)
	}
	return snap, nil
}

// settle decides a metadata publish whose outcome is unknown, and reports whether oi is
// stored. A lookup alone cannot: the publish may still be on its way to the stream. So it
// publishes the same metadata again, on the same connection, with the same compare-and-set:
// the server handles one connection's messages in order, so the first publish is decided
// before the second. The second is stored (the first was not), or refused because the first
// (or another uploader's) was: the lookup then tells which. It tries for a short while even
// when ctx has ended.
func (s *Store) settle(ctx context.Context, oi *jetstream.ObjectInfo, prev uint64) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := s.publishMeta(ctx, oi, prev)
	if err == nil {
		return true
	}
	if !errors.Is(err, errRaced) {
		return false
	}
	got, _, err := s.lookup(ctx, oi.Name)
	return err == nil && !got.Deleted && got.NUID == oi.NUID
}
