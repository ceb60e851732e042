package stream

import (
	"bytes"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Decoder turns batch messages back into changelog lines. It is not safe for concurrent use.
type Decoder struct {
	dec *zstd.Decoder
	buf []byte
}

// NewDecoder returns a decoder with bounded memory (batches are at most a few MB).
func NewDecoder() (*Decoder, error) {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &Decoder{dec: d}, nil
}

// Close releases the decoder.
func (d *Decoder) Close() { d.dec.Close() }

// Decode checks a batch's headers and payload and returns its lines, each ending in '\n'. The
// returned slice is valid until the next call. Errors name the message's sequence and what is
// wrong: bad headers, undecodable payload, checksum mismatch, or a line count that disagrees
// with the headers.
func (d *Decoder) Decode(seq uint64, h nats.Header, payload []byte) (BatchInfo, []byte, error) {
	info, err := ParseBatchHeader(h)
	if err != nil {
		return info, nil, fmt.Errorf("stream message %d: %w", seq, err)
	}
	d.buf, err = d.dec.DecodeAll(payload, d.buf[:0])
	if err != nil {
		return info, nil, fmt.Errorf("stream message %d (versions %d..%d): payload: %w", seq, info.FirstVersion, info.LastVersion, err)
	}
	if sum := crc(d.buf); sum != info.Sum {
		return info, nil, fmt.Errorf("stream message %d (versions %d..%d): checksum %08x, header says %08x", seq, info.FirstVersion, info.LastVersion, sum, info.Sum)
	}
	if n := bytes.Count(d.buf, []byte{'\n'}); n != info.Lines || (n > 0 && d.buf[len(d.buf)-1] != '\n') {
		return info, nil, fmt.Errorf("stream message %d (versions %d..%d): %d whole lines, header says %d", seq, info.FirstVersion, info.LastVersion, n, info.Lines)
	}
	return info, d.buf, nil
}

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
