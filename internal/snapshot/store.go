// Package snapshot keeps a cluster's MooseFS metadata snapshots in a JetStream object store,
// zstd-compressed, with the uncompressed size and SHA-256 in each object's metadata (the keys
// stream.Snap*).
//
// Metadata files reach tens of GB, so uploads and downloads stream with bounded memory: a few
// megabytes whatever the snapshot's size (see Options). The bucket's layout is the standard
// JetStream object store (NATS ADR-20): any object store client can list and read it. This
// package reads and writes that layout itself rather than through nats.go's ObjectStore,
// whose Put keeps up to 4000 chunks in flight (it failed on a slow disk, "stalled with too
// many outstanding async published messages"), whose Get buffered 180 MB for a 1 GB object
// and gives up after 5 s unless the context has a deadline, and whose List skips metadata it
// cannot decode.
//
// An object becomes visible only when its single metadata message is stored, after every
// chunk is acknowledged, and that message already carries the digest: a reader never sees a
// snapshot without its digest, and a failed upload leaves no object.
package snapshot

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/stream"
)

// Errors; match with errors.Is. They come wrapped with the object and what is wrong.
var (
	// ErrNotFound: no snapshot of that name is stored.
	ErrNotFound = errors.New("snapshot not found")
	// ErrConflict: a different file is already stored under the same timeline and version.
	ErrConflict = errors.New("a different snapshot with the same timeline and version is stored")
	// ErrCorrupt: a stored object is not a complete, intact snapshot (metadata missing or
	// malformed, chunks missing, digest, size or SHA-256 mismatch, bad metadata file).
	ErrCorrupt = errors.New("snapshot object is corrupt")
)

// Snapshot describes a stored snapshot.
type Snapshot struct {
	Name           string // stream.SnapshotName(Timeline, Version)
	Timeline       uint64
	Version        uint64 // the metadata's version: the id of the next change
	MetaID         uint64
	Time           int64  // unix seconds, as given to Upload
	Size           int64  // bytes, uncompressed
	CompressedSize int64  // bytes, as stored
	SHA256         string // hex, of the uncompressed file
	Source         string // where it was read from, for humans
	// MooseFS is the oldest tested MooseFS release whose mfsmaster loads it ("3.0.117",
	// "4.59.2", ">4.59.2"), from its section formats; "" when not recorded.
	MooseFS string
}

// Info is what the uploader knows of a snapshot beyond its file's header.
type Info struct {
	Timeline uint64 // >= 1
	Time     int64  // unix seconds: timestamp of line Version-1 when known, else file mtime
	Source   string
}

// MaxWindow is the largest zstd window an upload may use and a download accepts.
const MaxWindow = 16 << 20

// Options tune a Store. Memory of one upload is about (InFlight+1)*ChunkSize plus the zstd
// encoder (a few MB at the defaults); of one download, ReadAhead plus the decoder and Window.
type Options struct {
	// Replicas of the bucket when Open creates it; an existing bucket is used as it is.
	Replicas int
	// ChunkSize is the size of each stored chunk (the object store's default: 128 KiB).
	ChunkSize int
	// InFlight is how many chunks an upload publishes ahead of the server's acknowledgements.
	InFlight int
	// ReadAhead is how many bytes of chunks a download asks the server for ahead of use; at
	// least ChunkSize.
	ReadAhead int
	// Level and Window set the zstd encoder. Window is a power of two, at most MaxWindow.
	Level  zstd.EncoderLevel
	Window int
	// Stall is how long an upload waits for one acknowledgement, and a download for one chunk,
	// before it fails. It bounds a wait, not the transfer: a big snapshot takes as long as it
	// takes.
	Stall time.Duration
}

// DefaultOptions: measured with a 1 GB and a 4 GB snapshot through an embedded server in the
// same process, the whole process peaked at 56 MB resident uploading and 84-92 MB
// downloading, whatever the size (BenchmarkUpload, BenchmarkDownload).
func DefaultOptions() Options {
	return Options{
		Replicas:  1,
		ChunkSize: 128 << 10,
		InFlight:  16,
		ReadAhead: 2 << 20,
		Level:     zstd.SpeedFastest,
		Window:    1 << 20,
		Stall:     30 * time.Second,
	}
}

// Validate reports the first field that cannot be used, by name.
func (o Options) Validate() error {
	switch {
	case o.Replicas < 1 || o.Replicas > 5:
		return fmt.Errorf("snapshot options: Replicas %d: want 1..5", o.Replicas)
	case o.ChunkSize < 1<<10 || o.ChunkSize > 8<<20:
		return fmt.Errorf("snapshot options: ChunkSize %d: want 1 KiB..8 MiB", o.ChunkSize)
	case o.InFlight < 1:
		return fmt.Errorf("snapshot options: InFlight %d: want >= 1", o.InFlight)
	case o.ReadAhead < o.ChunkSize:
		return fmt.Errorf("snapshot options: ReadAhead %d: want >= ChunkSize %d", o.ReadAhead, o.ChunkSize)
	case o.Level < zstd.SpeedFastest || o.Level > zstd.SpeedBestCompression:
		return fmt.Errorf("snapshot options: Level %d: not a zstd encoder level", o.Level)
	case o.Window < zstd.MinWindowSize || o.Window > MaxWindow || o.Window&(o.Window-1) != 0:
		return fmt.Errorf("snapshot options: Window %d: want a power of two in %d..%d", o.Window, zstd.MinWindowSize, MaxWindow)
	case o.Stall <= 0:
		return fmt.Errorf("snapshot options: Stall %s: want > 0", o.Stall)
	}
	return nil
}

// Store is a cluster's snapshot bucket. Its methods may be called concurrently.
type Store struct {
	js     jetstream.JetStream
	obs    jetstream.ObjectStore
	stream jetstream.Stream // the bucket's stream, for the chunks
	bucket string
	opts   Options

	signer   *sign.Signer   // signs uploads; see WithSigner
	verifier *sign.Verifier // checks downloads; see WithVerifier
}

// Open is OpenWith with DefaultOptions and the given replicas.
func Open(ctx context.Context, js jetstream.JetStream, cluster string, replicas int) (*Store, error) {
	o := DefaultOptions()
	o.Replicas = replicas
	return OpenWith(ctx, js, cluster, o)
}

// OpenWith binds to the cluster's bucket (stream.SnapshotBucket), creating it if it does not
// exist: file storage, o.Replicas, no server-side compression (objects are zstd already).
func OpenWith(ctx context.Context, js jetstream.JetStream, cluster string, o Options) (*Store, error) {
	if err := stream.ValidCluster(cluster); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if mp := js.Conn().MaxPayload(); mp > 0 && int64(o.ChunkSize) > mp {
		return nil, fmt.Errorf("snapshot options: ChunkSize %d: the server takes messages of at most %d bytes", o.ChunkSize, mp)
	}
	bucket := stream.SnapshotBucket(cluster)
	obs, err := js.ObjectStore(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      bucket,
			Description: "mfsha: MooseFS metadata snapshots of cluster " + cluster,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
			Compression: false,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created meanwhile by another process
			obs, err = js.ObjectStore(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot bucket %s: %w", bucket, err)
	}
	return bind(ctx, js, obs, bucket, o)
}

// OpenReadOnly binds to the cluster's existing bucket, with DefaultOptions, and never creates
// it: the users of restore, status and a plain standby may not (their NATS role reads only),
// and a bucket is the shipper's to create with the cluster's replicas. It returns an error
// wrapping jetstream.ErrBucketNotFound when no shipper has created it yet.
func OpenReadOnly(ctx context.Context, js jetstream.JetStream, cluster string) (*Store, error) {
	if err := stream.ValidCluster(cluster); err != nil {
		return nil, err
	}
	bucket := stream.SnapshotBucket(cluster)
	obs, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("snapshot bucket %s: %w", bucket, err)
	}
	return bind(ctx, js, obs, bucket, DefaultOptions())
}

func bind(ctx context.Context, js jetstream.JetStream, obs jetstream.ObjectStore, bucket string, o Options) (*Store, error) {
	st, err := js.Stream(ctx, streamName(bucket))
	if err != nil {
		return nil, fmt.Errorf("snapshot bucket %s: %w", bucket, err)
	}
	return &Store{js: js, obs: obs, stream: st, bucket: bucket, opts: o}, nil
}

// Get describes one snapshot. It is ErrNotFound if none is stored under name, ErrCorrupt if
// the object's metadata is missing or malformed.
func (s *Store) Get(ctx context.Context, name string) (Snapshot, error) {
	oi, _, err := s.lookup(ctx, name)
	if err != nil {
		return Snapshot{}, err
	}
	if oi.Deleted {
		return Snapshot{}, fmt.Errorf("snapshot %s/%s: %w", s.bucket, name, ErrNotFound)
	}
	return fromInfo(oi)
}

// List returns every stored snapshot, by timeline then version. An object whose metadata is
// missing or malformed makes it fail with ErrCorrupt naming the object: nothing is skipped.
// (nats.go's ObjectStore.List skips metadata it cannot decode, and waits forever when the
// last one is such.)
func (s *Store) List(ctx context.Context) ([]Snapshot, error) {
	all := metaSubject(s.bucket, "")
	si, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(all+">"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.bucket, err)
	}
	var out []Snapshot
	for subj := range si.State.Subjects {
		enc, _ := strings.CutPrefix(subj, all)
		name, err := base64.URLEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("list %s: metadata subject %s: bad object name: %v: %w", s.bucket, subj, err, ErrCorrupt)
		}
		oi, _, err := s.lookup(ctx, string(name))
		if errors.Is(err, ErrNotFound) { // purged since the count
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		if oi.Deleted {
			continue
		}
		snap, err := fromInfo(oi)
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		out = append(out, snap)
	}
	slices.SortFunc(out, compareSnapshots)
	return out, nil
}

func compareSnapshots(a, b Snapshot) int {
	return cmp.Or(cmp.Compare(a.Timeline, b.Timeline), cmp.Compare(a.Version, b.Version))
}

// Delete removes a snapshot: its metadata first, so that it is no longer listed, then its
// chunks. It is ErrNotFound if none is stored under name.
func (s *Store) Delete(ctx context.Context, name string) error {
	oi, _, err := s.lookup(ctx, name)
	if err == nil && oi.Deleted {
		err = fmt.Errorf("snapshot %s/%s: %w", s.bucket, name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := s.obs.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete %s/%s: %w", s.bucket, name, err)
	}
	return nil
}
