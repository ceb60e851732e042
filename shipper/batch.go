package shipper

import (
	"bytes"
	"hash/crc32"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mfsha/mfsha/internal/buildinfo"
	"github.com/mfsha/mfsha/internal/stream"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batch collects whole, contiguous lines of one timeline.
type batch struct {
	info   stream.BatchInfo
	raw    []byte    // lines, each ending in '\n'
	readAt time.Time // when its first line was read
}

// add appends l; the caller has checked that l continues the batch.
func (b *batch) add(l Line) {
	if b.info.Lines == 0 {
		b.readAt = time.Now()
		b.info.Timeline, b.info.ParentTimeline, b.info.BridgedFrom = l.Timeline, l.Parent, l.Bridged
		b.info.FirstVersion, b.info.FirstTime = l.Version, int64(l.Time)
	}
	b.info.LastVersion, b.info.LastTime = l.Version, int64(l.Time)
	b.info.Lines++
	b.raw = append(b.raw, l.Raw...)
	b.raw = append(b.raw, '\n')
}

// fits reports whether l can join the batch: same timeline, next version, under maxBytes.
func (b *batch) fits(l Line, maxBytes int) bool {
	if b.info.Lines == 0 {
		return true
	}
	return l.Timeline == b.info.Timeline && l.Parent == 0 && l.Bridged == 0 && l.Version == b.info.LastVersion+1 &&
		len(b.raw)+len(l.Raw)+1 <= maxBytes
}

func (b *batch) reset() {
	b.info = stream.BatchInfo{}
	b.raw = b.raw[:0]
}

// sealed is a batch ready to publish.
type sealed struct {
	info    stream.BatchInfo
	payload []byte // zstd frame of the lines
	rawLen  int
	readAt  time.Time
}

// seal compresses the batch into a new payload; the batch can be reused afterwards.
func (b *batch) seal(enc *zstd.Encoder, metaID, epoch uint64, source string) sealed {
	info := b.info
	body := b.raw[:len(b.raw)-1]
	info.LastLineHash = stream.LineHash(body[bytes.LastIndexByte(body, '\n')+1:])
	info.Sum = crc32.Checksum(b.raw, castagnoli)
	info.MetaID, info.Epoch, info.Source = metaID, epoch, source
	info.Writer = buildinfo.Writer()
	return sealed{info: info, payload: enc.EncodeAll(b.raw, make([]byte, 0, len(b.raw)/4+64)), rawLen: len(b.raw), readAt: b.readAt}
}
