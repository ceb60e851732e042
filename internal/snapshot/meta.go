package snapshot

import (
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/stream"
)

// metadata is what an object's metadata says of its snapshot (keys stream.Snap*).
func (s Snapshot) metadata() map[string]string {
	md := map[string]string{
		stream.SnapVersion:  strconv.FormatUint(s.Version, 10),
		stream.SnapMetaID:   strconv.FormatUint(s.MetaID, 10),
		stream.SnapTime:     strconv.FormatInt(s.Time, 10),
		stream.SnapSize:     strconv.FormatInt(s.Size, 10),
		stream.SnapSHA256:   s.SHA256,
		stream.SnapTimeline: strconv.FormatUint(s.Timeline, 10),
		stream.SnapSource:   s.Source,
	}
	if s.MooseFS != "" {
		md[stream.SnapMooseFS] = s.MooseFS
	}
	return md
}

// fromInfo decodes and checks an object's metadata. Every field but the source is required;
// the object's name must be the one its timeline and version give. Errors are ErrCorrupt and
// name the object and the field.
func fromInfo(oi *jetstream.ObjectInfo) (Snapshot, error) {
	md := oi.Metadata
	s := Snapshot{Name: oi.Name, CompressedSize: int64(oi.Size), SHA256: md[stream.SnapSHA256], Source: md[stream.SnapSource],
		MooseFS: md[stream.SnapMooseFS]}
	bad := func(key string) error {
		v, ok := md[key]
		if !ok {
			return fmt.Errorf("snapshot object %s/%s: metadata %q is missing: %w", oi.Bucket, oi.Name, key, ErrCorrupt)
		}
		return fmt.Errorf("snapshot object %s/%s: metadata %s = %q: %w", oi.Bucket, oi.Name, key, v, ErrCorrupt)
	}
	var err error
	for _, f := range []struct {
		key string
		dst *uint64
	}{{stream.SnapTimeline, &s.Timeline}, {stream.SnapVersion, &s.Version}, {stream.SnapMetaID, &s.MetaID}} {
		if *f.dst, err = strconv.ParseUint(md[f.key], 10, 64); err != nil {
			return s, bad(f.key)
		}
	}
	if s.Time, err = strconv.ParseInt(md[stream.SnapTime], 10, 64); err != nil {
		return s, bad(stream.SnapTime)
	}
	if s.Size, err = strconv.ParseInt(md[stream.SnapSize], 10, 64); err != nil || s.Size < 0 {
		return s, bad(stream.SnapSize)
	}
	if b, err := hex.DecodeString(s.SHA256); err != nil || len(b) != 32 || hex.EncodeToString(b) != s.SHA256 {
		return s, bad(stream.SnapSHA256)
	}
	if s.Timeline == 0 {
		return s, bad(stream.SnapTimeline)
	}
	if want := stream.SnapshotName(s.Timeline, s.Version); want != oi.Name {
		return s, fmt.Errorf("snapshot object %s/%s: metadata says timeline %d version %d, which is named %s: %w",
			oi.Bucket, oi.Name, s.Timeline, s.Version, want, ErrCorrupt)
	}
	return s, nil
}
