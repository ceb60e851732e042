package mfsinfo

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/internal/moosefs"
)

func realAnswer(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDecodeRealAnswers: the answers of real 3.0.117 and 4.59.2 masters (testdata/README).
func TestDecodeRealAnswers(t *testing.T) {
	for _, tc := range []struct {
		file string
		want moosefs.Version
		n    int
	}{
		{"info-3.0.117.hex", moosefs.V3_0_117, 149},
		{"info-4.59.2.hex", moosefs.V4_59_2, 205},
	} {
		p := realAnswer(t, tc.file)
		if len(p) != tc.n {
			t.Fatalf("%s: %d bytes, want %d", tc.file, len(p), tc.n)
		}
		info, err := Decode(p)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if info.MooseFS != tc.want || info.MetaVersion != 2 {
			t.Errorf("%s: MooseFS %s, metadata version %d; want %s and 2", tc.file, info.MooseFS, info.MetaVersion, tc.want)
		}
	}
}

// TestDecodeRefuses: an answer Decode cannot place is an error, never a version read from
// the wrong bytes.
func TestDecodeRefuses(t *testing.T) {
	three, four := realAnswer(t, "info-3.0.117.hex"), realAnswer(t, "info-4.59.2.hex")
	zero := bytes.Clone(four)
	clear(zero[125:133])
	for name, p := range map[string][]byte{
		"empty":                   nil,
		"3.0.x cut short":         three[:148],
		"4.5x with a byte more":   append(bytes.Clone(four), 0),
		"3.0.x padded to 205":     append(bytes.Clone(three), make([]byte, 56)...),
		"4.5x metadata version 0": zero,
	} {
		if info, err := Decode(p); !errors.Is(err, ErrUnknownLayout) {
			t.Errorf("%s: %+v, %v; want ErrUnknownLayout", name, info, err)
		}
	}
}
