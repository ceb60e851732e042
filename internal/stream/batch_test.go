package stream

import (
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestHeaderRoundTrip(t *testing.T) {
	want := BatchInfo{Timeline: 2, ParentTimeline: 1, BridgedFrom: 0, FirstVersion: 10, LastVersion: 12, FirstTime: 1700000000,
		LastTime: 1700000002, Lines: 3, LastLineHash: LineHash([]byte("12: 1700000002|IDLE()")), Sum: 0xdeadbeef, MetaID: 42, Epoch: 7, Source: "ma", Writer: "mfsha 0.1.0"}
	got, err := ParseBatchHeader(want.Header())
	if err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

func TestHeaderErrorsNameTheHeader(t *testing.T) {
	good := BatchInfo{Timeline: 1, FirstVersion: 1, LastVersion: 2, Lines: 2}
	for _, tc := range []struct {
		mutate func(h map[string][]string)
		want   string
	}{
		{func(h map[string][]string) { delete(h, HdrLastVersion) }, HdrLastVersion + ": missing"},
		{func(h map[string][]string) { h[HdrFirstVersion] = []string{"x"} }, HdrFirstVersion + `: "x" is not a number`},
		{func(h map[string][]string) { h[HdrLines] = []string{"5"} }, "do not match " + HdrLines},
		{func(h map[string][]string) { h[HdrEncoding] = []string{"gzip"} }, `unsupported encoding "gzip"`},
		{func(h map[string][]string) { h[HdrTimeline] = []string{"0"} }, "timeline 0"},
		// Found by trying it: Last-First+1 wraps around to 0, and status showed version 2^64-1.
		{func(h map[string][]string) {
			h[HdrFirstVersion], h[HdrLastVersion], h[HdrLines] = []string{"0"}, []string{"18446744073709551615"}, []string{"0"}
		}, HdrFirstVersion + ": version 0"},
		{func(h map[string][]string) {
			h[HdrFirstVersion], h[HdrLastVersion], h[HdrLines] = []string{"1"}, []string{"0"}, []string{"0"}
		}, HdrLines + ": 0 lines"},
		{func(h map[string][]string) {
			h[HdrFirstVersion], h[HdrLastVersion], h[HdrLines] = []string{"2"}, []string{"18446744073709551615"}, []string{"2147483647"}
		}, "do not match " + HdrLines},
	} {
		h := good.Header()
		tc.mutate(h)
		if _, err := ParseBatchHeader(h); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error containing %q", err, tc.want)
		}
	}
}

func TestDecodeDetectsCorruption(t *testing.T) {
	lines := []byte("1: 17|SETMETAID(5)\n2: 17|CREATE(1,a,1,420,18,0,0,0):2\n")
	enc, _ := zstd.NewWriter(nil)
	payload := enc.EncodeAll(lines, nil)
	info := BatchInfo{Timeline: 1, FirstVersion: 1, LastVersion: 2, Lines: 2, Sum: crc(lines)}
	d, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, got, err := d.Decode(7, info.Header(), payload); err != nil || string(got) != string(lines) {
		t.Fatalf("good batch: %q, %v", got, err)
	}
	bad := append([]byte(nil), payload...)
	bad[len(bad)/2] ^= 0xff
	if _, _, err := d.Decode(7, info.Header(), bad); err == nil || !strings.Contains(err.Error(), "stream message 7") {
		t.Fatalf("flipped byte: %v, want an error naming message 7", err)
	}
	wrongSum := info
	wrongSum.Sum++
	if _, _, err := d.Decode(8, wrongSum.Header(), payload); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("wrong sum: %v", err)
	}
	three := BatchInfo{Timeline: 1, FirstVersion: 1, LastVersion: 3, Lines: 3, Sum: crc(lines)}
	if _, _, err := d.Decode(9, three.Header(), payload); err == nil || !strings.Contains(err.Error(), "2 whole lines, header says 3") {
		t.Fatalf("line count: %v", err)
	}
}

func TestNames(t *testing.T) {
	if err := ValidCluster("prod-1_a"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "a.b", "a b", "a>", strings.Repeat("x", 65)} {
		if ValidCluster(bad) == nil {
			t.Errorf("ValidCluster(%q) accepted", bad)
		}
	}
	if a, b := SnapshotName(1, 99), SnapshotName(1, 100); a >= b {
		t.Errorf("snapshot names do not sort by version: %s >= %s", a, b)
	}
	if a, b := SnapshotName(1, 1000), SnapshotName(2, 1); a >= b {
		t.Errorf("snapshot names do not sort by timeline: %s >= %s", a, b)
	}
}
