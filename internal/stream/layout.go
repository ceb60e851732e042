// Package stream defines how mfsha lays out a MooseFS cluster's metadata history in NATS
// JetStream. The shipper writes this layout and the standby, restore and status commands read
// it, so every name, subject and header used on the wire is defined here and nowhere else.
//
// Per cluster NAME (validated by ValidCluster):
//
//   - Stream "MFSHA_<NAME>" with subjects "mfsha.<NAME>.log.<TIMELINE>" holds changelog
//     batches. Each message is a run of whole, contiguous changelog lines, exactly as they are
//     in the master's files (each ending in '\n'), zstd-compressed. The stream has a single
//     writer: every publish carries an expected last sequence, so a second shipper cannot
//     append, and a message id (MsgID) derived from the version range, so a retried publish is
//     dropped as a duplicate.
//   - Object store bucket "MFSHA_<NAME>_snap" holds metadata snapshots, zstd-compressed, named
//     by SnapshotName, with the headers below in the object's metadata.
//
// A timeline is a history of versions. Timeline 1 is the first one shipped. When the master
// is started from older metadata its versions go backwards: the lines from there on belong to
// timeline N+1 and are published on their own subject, never interleaved with timeline N.
package stream

import (
	"fmt"
	"regexp"
	"strconv"
)

// Header names carried by every changelog batch (and, where noted, by snapshot objects).
const (
	HdrFirstVersion = "Mfsha-First-Version"   // first line's version (decimal)
	HdrLastVersion  = "Mfsha-Last-Version"    // last line's version (decimal)
	HdrFirstTime    = "Mfsha-First-Time"      // first line's timestamp, unix seconds
	HdrLastTime     = "Mfsha-Last-Time"       // last line's timestamp, unix seconds
	HdrLines        = "Mfsha-Lines"           // number of lines in the batch
	HdrLastLineHash = "Mfsha-Last-Line-Hash"  // LineHash of the last line, hex: locates it in files on resume
	HdrSum          = "Mfsha-Sum"             // crc32c (Castagnoli) of the uncompressed payload, hex
	HdrTimeline     = "Mfsha-Timeline"        // timeline number (decimal, >= 1); also on snapshots
	HdrTimelineFrom = "Mfsha-Timeline-Parent" // on the first batch of a timeline > 1: the timeline it forked from
	HdrMetaID       = "Mfsha-Metaid"          // MooseFS metaid (decimal), when known; also on snapshots
	HdrEpoch        = "Mfsha-Epoch"           // fencing epoch (lease revision) of the writer, when leased
	HdrSource       = "Mfsha-Source"          // host name and data kind of the writer, for humans
	HdrEncoding     = "Mfsha-Encoding"        // "zstd"
	HdrWriter       = "Mfsha-Writer"          // program and version that wrote the batch, e.g. "mfsha 0.1.0"
	// HdrBridgedFrom, on a batch that follows a hole in the changelog's versions: the first
	// missing version. MooseFS skips versions across a clean stop; the metadata file it wrote
	// then (a snapshot of exactly this batch's first version) holds the missing changes.
	HdrBridgedFrom = "Mfsha-Bridged-From"
)

// Snapshot object metadata keys (in ObjectMeta.Metadata).
const (
	SnapVersion  = "version"  // metadata version (the next change id), decimal
	SnapMetaID   = "metaid"   // decimal
	SnapTime     = "time"     // unix seconds: timestamp of line version-1 when known, else file mtime
	SnapSize     = "size"     // uncompressed size in bytes
	SnapSHA256   = "sha256"   // hex SHA-256 of the uncompressed file
	SnapTimeline = "timeline" // timeline the master was on when it wrote the snapshot
	SnapSource   = "source"   // file name it was read from, for humans
	SnapMooseFS  = "moosefs"  // optional: the oldest tested MooseFS release that loads it (its sections), e.g. 4.59.2
)

// EncodingZstd is the only payload encoding written today.
const EncodingZstd = "zstd"

var clusterRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidCluster reports an error naming the cluster when it cannot be used in stream, subject
// and bucket names.
func ValidCluster(cluster string) error {
	if !clusterRE.MatchString(cluster) {
		return fmt.Errorf("cluster name %q: must be 1-64 characters of A-Z a-z 0-9 _ -", cluster)
	}
	return nil
}

// StreamName is the changelog stream of a cluster.
func StreamName(cluster string) string { return "MFSHA_" + cluster }

// SnapshotBucket is the object store bucket of a cluster's snapshots.
func SnapshotBucket(cluster string) string { return "MFSHA_" + cluster + "_snap" }

// LeaseBucket is the key-value bucket that holds the cluster's failover lease.
func LeaseBucket(cluster string) string { return "MFSHA_" + cluster + "_lease" }

// MembersBucket is the key-value bucket, without TTL, that names the failover nodes the lease's
// holder asks for failsafe promises (failover/DESIGN.md, "Failsafe").
func MembersBucket(cluster string) string { return "MFSHA_" + cluster + "_members" }

// SubjectAll matches every changelog subject of a cluster.
func SubjectAll(cluster string) string { return "mfsha." + cluster + ".log.>" }

// Subject is the changelog subject of one timeline.
func Subject(cluster string, timeline uint64) string {
	return "mfsha." + cluster + ".log." + strconv.FormatUint(timeline, 10)
}

// MsgID is the JetStream message id of a batch: the same range on the same timeline always
// gets the same id, so a republish is detected as a duplicate.
func MsgID(timeline, first, last uint64) string {
	return fmt.Sprintf("t%d:%d-%d", timeline, first, last)
}

// SnapshotName is the object name of a snapshot of the given timeline and version. Names sort
// by timeline, then version, when compared as strings.
func SnapshotName(timeline, version uint64) string {
	return fmt.Sprintf("metadata.t%06d.v%020d.mfs.zst", timeline, version)
}
