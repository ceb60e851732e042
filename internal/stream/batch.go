package stream

import (
	"fmt"
	"strconv"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go"
)

// BatchInfo describes one changelog batch: what its headers say.
type BatchInfo struct {
	Timeline       uint64
	ParentTimeline uint64 // set only on the first batch of a forked timeline
	BridgedFrom    uint64 // set only on a batch after a hole: the first missing version
	FirstVersion   uint64
	LastVersion    uint64
	FirstTime      int64
	LastTime       int64
	Lines          int
	LastLineHash   uint64
	Sum            uint32 // crc32c of the uncompressed payload
	MetaID         uint64 // 0 when unknown
	Epoch          uint64 // 0 when not leased
	Source         string
	Writer         string // the mfsha that wrote the batch, e.g. "mfsha 0.1.0"; "" in batches of older versions
}

// LineHash identifies a changelog line across timelines: two lines with the same version on
// different timelines almost always differ in timestamp or content. line excludes the '\n'.
// It is xxHash64, so that the header is the same whichever side computes it.
func LineHash(line []byte) uint64 { return xxhash.Sum64(line) }

// Header encodes b as message headers.
func (b BatchInfo) Header() nats.Header {
	h := nats.Header{}
	u := func(k string, v uint64) { h.Set(k, strconv.FormatUint(v, 10)) }
	u(HdrTimeline, b.Timeline)
	if b.ParentTimeline != 0 {
		u(HdrTimelineFrom, b.ParentTimeline)
	}
	if b.BridgedFrom != 0 {
		u(HdrBridgedFrom, b.BridgedFrom)
	}
	u(HdrFirstVersion, b.FirstVersion)
	u(HdrLastVersion, b.LastVersion)
	h.Set(HdrFirstTime, strconv.FormatInt(b.FirstTime, 10))
	h.Set(HdrLastTime, strconv.FormatInt(b.LastTime, 10))
	h.Set(HdrLines, strconv.Itoa(b.Lines))
	h.Set(HdrLastLineHash, strconv.FormatUint(b.LastLineHash, 16))
	h.Set(HdrSum, strconv.FormatUint(uint64(b.Sum), 16))
	if b.MetaID != 0 {
		u(HdrMetaID, b.MetaID)
	}
	if b.Epoch != 0 {
		u(HdrEpoch, b.Epoch)
	}
	if b.Source != "" {
		h.Set(HdrSource, b.Source)
	}
	if b.Writer != "" {
		h.Set(HdrWriter, b.Writer)
	}
	h.Set(HdrEncoding, EncodingZstd)
	return h
}

// ParseBatchHeader decodes the headers of a changelog batch. The error names the header that
// is missing or malformed.
func ParseBatchHeader(h nats.Header) (BatchInfo, error) {
	var b BatchInfo
	var err error
	num := func(k string, base int, bits int, optional bool) uint64 {
		if err != nil {
			return 0
		}
		s := h.Get(k)
		if s == "" {
			if !optional {
				err = fmt.Errorf("header %s: missing", k)
			}
			return 0
		}
		v, e := strconv.ParseUint(s, base, bits)
		if e != nil {
			err = fmt.Errorf("header %s: %q is not a number: %w", k, s, e)
		}
		return v
	}
	if enc := h.Get(HdrEncoding); enc != EncodingZstd {
		return b, fmt.Errorf("header %s: unsupported encoding %q", HdrEncoding, enc)
	}
	b.Timeline = num(HdrTimeline, 10, 64, false)
	b.ParentTimeline = num(HdrTimelineFrom, 10, 64, true)
	b.BridgedFrom = num(HdrBridgedFrom, 10, 64, true)
	b.FirstVersion = num(HdrFirstVersion, 10, 64, false)
	b.LastVersion = num(HdrLastVersion, 10, 64, false)
	b.FirstTime = int64(num(HdrFirstTime, 10, 63, false))
	b.LastTime = int64(num(HdrLastTime, 10, 63, false))
	b.Lines = int(num(HdrLines, 10, 31, false))
	b.LastLineHash = num(HdrLastLineHash, 16, 64, false)
	b.Sum = uint32(num(HdrSum, 16, 32, false))
	b.MetaID = num(HdrMetaID, 10, 64, true)
	b.Epoch = num(HdrEpoch, 10, 64, true)
	b.Source = h.Get(HdrSource)
	b.Writer = h.Get(HdrWriter)
	if err != nil {
		return b, err
	}
	if b.BridgedFrom != 0 && b.BridgedFrom >= b.FirstVersion {
		return b, fmt.Errorf("header %s: %d is not below the first version %d", HdrBridgedFrom, b.BridgedFrom, b.FirstVersion)
	}
	if b.Timeline == 0 {
		return b, fmt.Errorf("header %s: timeline 0 is not valid", HdrTimeline)
	}
	// MooseFS numbers changes from 1, and a batch holds at least one line. Checked before the
	// range arithmetic: First=0, Last=2^64-1 would wrap Last-First+1 around to Lines=0.
	if b.FirstVersion == 0 {
		return b, fmt.Errorf("header %s: version 0 is not valid (changes are numbered from 1)", HdrFirstVersion)
	}
	if b.Lines < 1 {
		return b, fmt.Errorf("header %s: %d lines (a batch holds at least one)", HdrLines, b.Lines)
	}
	if b.LastVersion < b.FirstVersion || b.LastVersion-b.FirstVersion+1 != uint64(b.Lines) {
		return b, fmt.Errorf("headers %s..%s (%d..%d) do not match %s=%d", HdrFirstVersion, HdrLastVersion, b.FirstVersion, b.LastVersion, HdrLines, b.Lines)
	}
	return b, nil
}
