package failover

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/internal/stream"
)

// fakeHistory is a stream that holds lines first..last of timeline 1, with their real hashes.
type fakeHistory struct {
	lines map[uint64][]byte
	first uint64
	last  uint64
}

func (h fakeHistory) Newest(context.Context) (stream.Timeline, bool, error) {
	if h.last == 0 {
		return stream.Timeline{}, false, nil
	}
	return stream.Timeline{Timeline: 1, FirstVersion: h.first, LastVersion: h.last}, true, nil
}

func (h fakeHistory) LineHash(_ context.Context, _ stream.Timeline, v uint64) (uint64, error) {
	l, ok := h.lines[v]
	if !ok {
		return 0, fmt.Errorf("line %d not in the stream", v)
	}
	return stream.LineHash(l), nil
}

func changelogLine(v uint64, name string) []byte {
	return fmt.Appendf(nil, "%d: 1764000000|CREATE(1,%s,1,420,18,0,0,0):%d", v, name, v+1)
}

// TestArchiveLocal: a standby moves its host's old master files aside, and says loudly when
// they hold versions the stream lacks (beyond its end, or a different history).
func TestArchiveLocal(t *testing.T) {
	cases := []struct {
		name       string
		streamLast uint64
		diverge    bool
		wantWhy    string
		wantLoud   bool
	}{
		{"superseded", 10, false, "-standby", false},
		{"beyond the stream", 7, false, "-unshipped", true},
		{"another history", 10, true, "-unshipped", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "master")
			os.MkdirAll(data, 0o755)
			var file bytes.Buffer
			h := fakeHistory{lines: map[uint64][]byte{}, first: 1, last: tc.streamLast}
			for v := uint64(1); v <= 10; v++ {
				l := changelogLine(v, fmt.Sprintf("f%d", v))
				file.Write(append(l, '\n'))
				if v <= tc.streamLast {
					if tc.diverge && v == 10 {
						l = changelogLine(v, "other")
					}
					h.lines[v] = l
				}
			}
			os.WriteFile(filepath.Join(data, "changelog.0.mfs"), file.Bytes(), 0o644)
			os.WriteFile(filepath.Join(data, "metadata.mfs.back"), []byte("MFSM NEW"), 0o644)
			os.WriteFile(filepath.Join(data, "stats.mfs"), []byte("charts"), 0o644)
			var logs bytes.Buffer
			n := &Node{cfg: Config{ArchiveDir: filepath.Join(dir, "archive")}, log: slog.New(slog.NewTextHandler(&logs, nil)), m: NewMetrics(nil)}
			if err := n.archiveAgainst(context.Background(), data, h); err != nil {
				t.Fatal(err)
			}
			left, _ := os.ReadDir(data)
			if len(left) != 1 || left[0].Name() != "stats.mfs" {
				t.Errorf("left in DATA_PATH: %v; want only stats.mfs", names(left))
			}
			arch, _ := os.ReadDir(n.cfg.ArchiveDir)
			if len(arch) != 1 || !strings.HasSuffix(arch[0].Name(), tc.wantWhy) {
				t.Fatalf("archive dirs %v; want one ending in %s", names(arch), tc.wantWhy)
			}
			moved, _ := os.ReadDir(filepath.Join(n.cfg.ArchiveDir, arch[0].Name()))
			if len(moved) != 2 {
				t.Errorf("archived %v; want the changelog and the metadata", names(moved))
			}
			if got := strings.Contains(logs.String(), "level=WARN"); got != tc.wantLoud {
				t.Errorf("warned %v, want %v; log:\n%s", got, tc.wantLoud, logs.String())
			}
		})
	}
}

func names(es []os.DirEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
