package stream

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/mfsha/mfsha/internal/sign"
)

// Signature headers of a changelog batch, and metadata keys of a snapshot object.
const (
	HdrSig    = "Mfsha-Sig"    // ed25519 signature of BatchSigned, base64 (standard, unpadded)
	HdrKeyID  = "Mfsha-Key-Id" // sign.KeyID of the key that made it
	SnapSig   = "sig"          // ed25519 signature of SnapshotSigned, base64 (standard, unpadded)
	SnapKeyID = "key-id"       // sign.KeyID of the key that made it
)

// BatchSigned is the canonical encoding of what a batch's signature covers: the subject it
// was published on (its timeline's identity in the stream), every field of its headers that a
// reader acts on, and the SHA-256 of the payload exactly as stored (compressed). It is built
// from the decoded values, so it does not depend on the order or spelling of the headers:
//
//	mfsha-batch-v1\n
//	subject=<quoted>\n
//	timeline=<dec>\n timeline-parent=<dec>\n bridged-from=<dec>\n
//	first-version=<dec>\n last-version=<dec>\n first-time=<dec>\n last-time=<dec>\n
//	lines=<dec>\n last-line-hash=<dec>\n sum=<dec>\n metaid=<dec>\n epoch=<dec>\n
//	source=<quoted>\n writer=<quoted>\n encoding=<quoted>\n payload-sha256=<hex>\n
//
// one field per line (no spaces; shown folded here), every field always present (0 or ""
// when its header is absent), <dec> decimal, <quoted> as strconv.Quote writes it (so no
// value can contain a line break), <hex> lower case. A header added later that readers act on
// must be added here under a new version string.
func BatchSigned(subject string, b BatchInfo, payload []byte) []byte {
	sum := sha256.Sum256(payload)
	e := canonical{buf: make([]byte, 0, 512)}
	e.buf = append(e.buf, "mfsha-batch-v1\n"...)
	str, num := e.str, e.num
	str("subject", subject)
	num("timeline", b.Timeline)
	num("timeline-parent", b.ParentTimeline)
	num("bridged-from", b.BridgedFrom)
	num("first-version", b.FirstVersion)
	num("last-version", b.LastVersion)
	num("first-time", uint64(b.FirstTime))
	num("last-time", uint64(b.LastTime))
	num("lines", uint64(b.Lines))
	num("last-line-hash", b.LastLineHash)
	num("sum", uint64(b.Sum))
	num("metaid", b.MetaID)
	num("epoch", b.Epoch)
	str("source", b.Source)
	str("writer", b.Writer)
	str("encoding", EncodingZstd)
	e.buf = append(e.buf, "payload-sha256="...)
	e.buf = hex.AppendEncode(e.buf, sum[:])
	e.buf = append(e.buf, '\n')
	return e.buf
}

// SignedHeader is b.Header() with the signature of s over BatchSigned(subject, b, payload).
func SignedHeader(s *sign.Signer, subject string, b BatchInfo, payload []byte) nats.Header {
	h := b.Header()
	h.Set(HdrKeyID, s.KeyID())
	h.Set(HdrSig, s.Sign(BatchSigned(subject, b, payload)))
	return h
}

// VerifyBatch parses a batch's headers and checks its signature with v, before anything of
// its payload is used. The error names the stream message (sequence and subject) and wraps
// sign.ErrUnsigned, sign.ErrUntrusted or sign.ErrBadSignature.
func VerifyBatch(v *sign.Verifier, seq uint64, subject string, h nats.Header, payload []byte) (BatchInfo, error) {
	info, err := ParseBatchHeader(h)
	if err != nil {
		return info, fmt.Errorf("stream message %d (%s): %w", seq, subject, err)
	}
	if err := v.Verify(h.Get(HdrKeyID), h.Get(HdrSig), BatchSigned(subject, info, payload)); err != nil {
		return info, fmt.Errorf("stream message %d (%s, versions %d..%d): refused: %w", seq, subject, info.FirstVersion, info.LastVersion, err)
	}
	return info, nil
}

// SnapshotSigned is the canonical encoding of what a snapshot object's signature covers: its
// bucket and name (its identity) and every field of its metadata that a reader acts on, the
// uncompressed file's SHA-256 and size among them (the download checks the file against
// them). One field per line, as for BatchSigned:
//
//	mfsha-snapshot-v1\n
//	bucket=<quoted>\n name=<quoted>\n timeline=<dec>\n version=<dec>\n metaid=<dec>\n
//	time=<dec>\n size=<dec>\n sha256=<quoted>\n source=<quoted>\n moosefs=<quoted>\n
func SnapshotSigned(bucket, name string, timeline, version, metaID uint64, time, size int64, sha256hex, source, moosefs string) []byte {
	e := canonical{buf: make([]byte, 0, 384)}
	e.buf = append(e.buf, "mfsha-snapshot-v1\n"...)
	str, num := e.str, e.num
	str("bucket", bucket)
	str("name", name)
	num("timeline", timeline)
	num("version", version)
	num("metaid", metaID)
	e.int("time", time)
	e.int("size", size)
	str("sha256", sha256hex)
	str("source", source)
	str("moosefs", moosefs)
	return e.buf
}

// canonical appends the "key=value\n" lines of a signed encoding.
type canonical struct{ buf []byte }

func (e *canonical) str(k, v string)        { e.field(k, strconv.AppendQuote(nil, v)) }
func (e *canonical) num(k string, v uint64) { e.field(k, strconv.AppendUint(nil, v, 10)) }
func (e *canonical) int(k string, v int64)  { e.field(k, strconv.AppendInt(nil, v, 10)) }

func (e *canonical) field(k string, v []byte) {
	e.buf = append(e.buf, k...)
	e.buf = append(e.buf, '=')
	e.buf = append(e.buf, v...)
	e.buf = append(e.buf, '\n')
}
