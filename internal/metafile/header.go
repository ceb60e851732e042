// Package metafile reads what mfsha needs of a MooseFS metadata file (metadata.mfs,
// metadata.mfs.back, metadata_ml.mfs.back): the header's signature, version and metaid, and
// the end marker that a complete file carries.
package metafile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

const (
	// Signature starts every metadata file written by MooseFS 2.0 and later.
	Signature = "MFSM 2.0"
	// NewSignature is the whole content of an empty file system's metadata (version 1).
	NewSignature = "MFSM NEW"
	// EOFMarker ends every complete metadata file.
	EOFMarker = "[MFS EOF MARKER]"
	// HeaderSize is the length of signature, version and metaid.
	HeaderSize = 24
)

// Errors returned (wrapped with the file name) by Check.
var (
	ErrSignature = errors.New("not a MooseFS 2.0+ metadata file (bad signature)")
	ErrTruncated = errors.New("truncated: the end marker is missing")
)

// Header is what a metadata file says about itself.
type Header struct {
	// Version is the id of the next change: the file holds every change below it.
	Version uint64
	// MetaID identifies the file system; 0 for a new, empty one.
	MetaID uint64
	// New is true for the 8-byte "MFSM NEW" file of an empty file system.
	New bool
}

// ParseHeader decodes the first bytes of a metadata file. b must hold at least HeaderSize
// bytes, or exactly the 8 bytes of NewSignature.
func ParseHeader(b []byte) (Header, error) {
	if len(b) >= len(NewSignature) && string(b[:8]) == NewSignature {
		return Header{Version: 1, New: true}, nil
	}
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: header needs %d bytes, have %d", ErrTruncated, HeaderSize, len(b))
	}
	if string(b[:8]) != Signature {
		return Header{}, fmt.Errorf("%w: starts with %q", ErrSignature, b[:8])
	}
	return Header{
		Version: binary.BigEndian.Uint64(b[8:16]),
		MetaID:  binary.BigEndian.Uint64(b[16:24]),
	}, nil
}

// CheckReaderAt checks the header and the end marker of a metadata file of the given size
// without reading what lies between: it is cheap even for tens of gigabytes.
func CheckReaderAt(r io.ReaderAt, size int64) (Header, error) {
	n := int64(HeaderSize)
	if size < n {
		n = size
	}
	head := make([]byte, n)
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return Header{}, fmt.Errorf("read header: %w", err)
	}
	h, err := ParseHeader(head)
	if err != nil {
		return Header{}, err
	}
	if h.New {
		if size != int64(len(NewSignature)) {
			return Header{}, fmt.Errorf("%w: %q file has %d bytes, want %d", ErrSignature, NewSignature, size, len(NewSignature))
		}
		return h, nil
	}
	if size < HeaderSize+int64(len(EOFMarker)) {
		return Header{}, fmt.Errorf("%w: only %d bytes", ErrTruncated, size)
	}
	tail := make([]byte, len(EOFMarker))
	if _, err := r.ReadAt(tail, size-int64(len(tail))); err != nil {
		return Header{}, fmt.Errorf("read end marker: %w", err)
	}
	if !bytes.Equal(tail, []byte(EOFMarker)) {
		return Header{}, fmt.Errorf("%w: last %d bytes are %q", ErrTruncated, len(tail), tail)
	}
	return h, nil
}

// CheckFile checks an open metadata file; see CheckReaderAt.
func CheckFile(f *os.File) (Header, error) {
	st, err := f.Stat()
	if err != nil {
		return Header{}, fmt.Errorf("metadata file %s: %w", f.Name(), err)
	}
	h, err := CheckReaderAt(f, st.Size())
	if err != nil {
		return Header{}, fmt.Errorf("metadata file %s: %w", f.Name(), err)
	}
	return h, nil
}

// Check opens and checks the metadata file at path; errors name the file.
func Check(path string) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, fmt.Errorf("metadata file: %w", err)
	}
	defer f.Close()
	return CheckFile(f)
}
