// Package snapshot keeps a cluster's MooseFS metadata snapshots in a JetStream object store,
// zstd-compressed, with the uncompressed size and SHA-256 in each object's metadata.
//
// Uploads and downloads stream: memory does not grow with the snapshot (metadata files reach
// tens of GB). An upload is stored under a temporary name and renamed to its final name, with
// its digest, only when complete, so a reader never sees a snapshot without its digest.
package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/stream"
)

// tmpPrefix marks an upload in progress (or abandoned by a crash).
const tmpPrefix = "uploading."

// Errors; match with errors.Is.
var (
	ErrNotFound = errors.New("snapshot not found")
	ErrConflict = errors.New("a different snapshot with the same timeline and version exists")
	ErrCorrupt  = errors.New("snapshot object is corrupt")
)

// Snapshot describes a stored snapshot.
type Snapshot struct {
	Name           string
	Timeline       uint64
	Version        uint64 // the metadata's version: the next change id
	MetaID         uint64
	Time           int64 // unix seconds
	Size           int64 // uncompressed
	CompressedSize int64
	SHA256         string // hex, of the uncompressed file
	Source         string
}

// Info is what the caller knows of a snapshot it uploads beyond the file's header.
type Info struct {
	Timeline uint64
	Time     int64 // unix seconds
	Source   string
}

// Store is a cluster's snapshot bucket. Its methods may be called concurrently.
type Store struct {
	obs    jetstream.ObjectStore
	bucket string
}

// Open creates the cluster's bucket or binds to it.
func Open(ctx context.Context, js jetstream.JetStream, cluster string, replicas int) (*Store, error) {
	bucket := stream.SnapshotBucket(cluster)
	obs, err := js.ObjectStore(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      bucket,
			Description: "mfsha: MooseFS metadata snapshots of cluster " + cluster,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot bucket %s: %w", bucket, err)
	}
	return &Store{obs: obs, bucket: bucket}, nil
}

// Upload checks the metadata file at path (header and end marker) and stores it. Uploading a
// snapshot that is already stored (same timeline and version, same size) does nothing and
// returns it; a different one under the same timeline and version is ErrConflict. The content
// is read from one open descriptor, so the master may rename the file away meanwhile.
func (s *Store) Upload(ctx context.Context, path string, info Info) (Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	h, err := metafile.CheckFile(f)
	if err != nil {
		return Snapshot{}, err
	}
	st, err := f.Stat()
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", path, err)
	}
	name := stream.SnapshotName(info.Timeline, h.Version)
	if have, err := s.Get(ctx, name); err == nil {
		if have.Size != st.Size() || have.MetaID != h.MetaID {
			return have, fmt.Errorf("upload %s as %s: %w (stored: %d bytes, metaid %d; file: %d bytes, metaid %d)",
				path, name, ErrConflict, have.Size, have.MetaID, st.Size(), h.MetaID)
		}
		return have, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Snapshot{}, err
	}

	tmp := tmpPrefix + name
	_ = s.obs.Delete(ctx, tmp) // an upload a crash left behind
	sum := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		enc, err := zstd.NewWriter(pw, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
		if err == nil {
			_, err = io.Copy(enc, io.TeeReader(io.NewSectionReader(f, 0, st.Size()), sum))
			if cerr := enc.Close(); err == nil {
				err = cerr
			}
		}
		pw.CloseWithError(err)
	}()
	oi, err := s.obs.Put(ctx, jetstream.ObjectMeta{Name: tmp}, pr)
	pr.CloseWithError(errors.New("upload ended"))
	if err != nil {
		_ = s.obs.Delete(context.WithoutCancel(ctx), tmp)
		return Snapshot{}, fmt.Errorf("upload %s to %s/%s: %w", path, s.bucket, name, err)
	}
	snap := Snapshot{Name: name, Timeline: info.Timeline, Version: h.Version, MetaID: h.MetaID, Time: info.Time,
		Size: st.Size(), CompressedSize: int64(oi.Size), SHA256: hex.EncodeToString(sum.Sum(nil)), Source: info.Source}
	if err := s.obs.UpdateMeta(ctx, tmp, jetstream.ObjectMeta{Name: name, Metadata: snap.metadata()}); err != nil {
		_ = s.obs.Delete(context.WithoutCancel(ctx), tmp)
		return Snapshot{}, fmt.Errorf("upload %s: name it %s: %w", path, name, err)
	}
	return snap, nil
}

func (s Snapshot) metadata() map[string]string {
	return map[string]string{
		stream.SnapVersion:  strconv.FormatUint(s.Version, 10),
		stream.SnapMetaID:   strconv.FormatUint(s.MetaID, 10),
		stream.SnapTime:     strconv.FormatInt(s.Time, 10),
		stream.SnapSize:     strconv.FormatInt(s.Size, 10),
		stream.SnapSHA256:   s.SHA256,
		stream.SnapTimeline: strconv.FormatUint(s.Timeline, 10),
		stream.SnapSource:   s.Source,
	}
}

// fromInfo decodes an object's metadata; the error names the object and the field.
func fromInfo(oi *jetstream.ObjectInfo) (Snapshot, error) {
	s := Snapshot{Name: oi.Name, CompressedSize: int64(oi.Size), SHA256: oi.Metadata[stream.SnapSHA256], Source: oi.Metadata[stream.SnapSource]}
	num := func(key string) (uint64, error) {
		v, err := strconv.ParseUint(oi.Metadata[key], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("snapshot object %s: metadata %s = %q: %w", oi.Name, key, oi.Metadata[key], ErrCorrupt)
		}
		return v, nil
	}
	var err error
	var t, size uint64
	for _, f := range []struct {
		key string
		dst *uint64
	}{{stream.SnapVersion, &s.Version}, {stream.SnapMetaID, &s.MetaID}, {stream.SnapTimeline, &s.Timeline}, {stream.SnapTime, &t}, {stream.SnapSize, &size}} {
		if *f.dst, err = num(f.key); err != nil {
			return s, err
		}
	}
	s.Time, s.Size = int64(t), int64(size)
	if len(s.SHA256) != 64 {
		return s, fmt.Errorf("snapshot object %s: metadata %s = %q: %w", oi.Name, stream.SnapSHA256, s.SHA256, ErrCorrupt)
	}
	if want := stream.SnapshotName(s.Timeline, s.Version); want != oi.Name {
		return s, fmt.Errorf("snapshot object %s: metadata says timeline %d version %d (%s): %w", oi.Name, s.Timeline, s.Version, want, ErrCorrupt)
	}
	return s, nil
}

// Get describes one snapshot; ErrNotFound if it is not stored.
func (s *Store) Get(ctx context.Context, name string) (Snapshot, error) {
	oi, err := s.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return Snapshot{}, fmt.Errorf("%s/%s: %w", s.bucket, name, ErrNotFound)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("%s/%s: %w", s.bucket, name, err)
	}
	return fromInfo(oi)
}

// List returns the stored snapshots, by timeline then version. Uploads in progress are not
// listed; an object with bad metadata is an error naming it.
func (s *Store) List(ctx context.Context) ([]Snapshot, error) {
	ois, err := s.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.bucket, err)
	}
	var out []Snapshot
	for _, oi := range ois {
		if strings.HasPrefix(oi.Name, tmpPrefix) {
			continue
		}
		snap, err := fromInfo(oi)
		if err != nil {
			return nil, err
		}
		out = append(out, snap)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes a snapshot.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := s.obs.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete %s/%s: %w", s.bucket, name, err)
	}
	return nil
}
