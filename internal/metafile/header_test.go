package metafile

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func file(version, metaid uint64, body string, end bool) []byte {
	b := []byte(Signature)
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint64(b, metaid)
	b = append(b, body...)
	if end {
		b = append(b, EOFMarker...)
	}
	return b
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		content []byte
		want    Header
		err     error
	}{
		{"good", file(30, 0x6B068DD396DD8C5A, "SESS 1.5....", true), Header{Version: 30, MetaID: 0x6B068DD396DD8C5A}, nil},
		{"new", []byte(NewSignature), Header{Version: 1, New: true}, nil},
		{"truncated", file(30, 1, "SESS 1.5....", false), Header{}, ErrTruncated},
		{"short", []byte("MFSM 2"), Header{}, ErrTruncated},
		{"bad signature", append([]byte("MFSM 1.6"), file(3, 1, "", true)[8:]...), Header{}, ErrSignature},
		{"new with more", []byte(NewSignature + "x"), Header{}, ErrSignature},
	} {
		p := filepath.Join(dir, tc.name)
		os.WriteFile(p, tc.content, 0o644)
		got, err := Check(p)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.name, got, err, tc.want, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not name the file", tc.name, err)
		}
	}
}
