package failover

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/chunklock"
)

// A lock only the metadata kept names no file; the promoter finds it in the lines of a local
// metalogger (or the master's own changelog), the newest line for that chunk winning; a lock
// whose line is nowhere is left out (it cannot be asked about), a lock with its file kept.
func TestLocateLocksFindsTheFileOfAMetadataLock(t *testing.T) {
	data, ml := t.TempDir(), t.TempDir()
	now := time.Now().Unix()
	lines := fmt.Sprintf("10: %d|WRITE(7,0,1,0):55\n11: %d|UNLOCK(55)\n12: %d|WRITE(9,3,1,0):55\n13: %d|TRUNC(12,2):60\n", now-30, now-29, now-20, now-10)
	if err := os.WriteFile(filepath.Join(ml, "changelog_ml.0.mfs"), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	locks := []chunklock.Lock{
		{Chunk: 55, Time: uint32(now - 20), Op: "metadata"},
		{Chunk: 60, Time: uint32(now - 10), Op: "metadata"},
		{Chunk: 77, Time: uint32(now - 10), Op: "metadata"},
		{Chunk: 80, Inode: 4, Index: 1, Version: 14, Op: "WRITE"},
	}
	got := locateLocks([]string{data, ml}, locks, slog.New(slog.DiscardHandler))
	want := map[uint64][2]uint32{55: {9, 3}, 60: {12, 2}, 80: {4, 1}}
	if len(got) != len(want) {
		t.Fatalf("located %+v; want chunks 55, 60 and 80", got)
	}
	for _, l := range got {
		if w, ok := want[l.Chunk]; !ok || w != [2]uint32{l.Inode, l.Index} {
			t.Errorf("chunk %d: inode %d index %d; want %v", l.Chunk, l.Inode, l.Index, w)
		}
	}
}
