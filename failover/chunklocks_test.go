package failover

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReleaseChunkLocks(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	now := time.Unix(1796222300, 0)
	dir := t.TempDir()
	if n, err := releaseChunkLocks(dir, now, log); n != 0 || err != nil {
		t.Fatalf("without changelog.1.mfs: %d, %v; want 0, nil", n, err)
	}
	path := filepath.Join(dir, "changelog.1.mfs")
	dangling := "2585: 1796222290|CREATE(1002,w000315,1,420,18,0,0,0):1318\n" +
		"2586: 1796222290|ACQUIRE(1,1318)\n" +
		"2587: 1796222290|WRITE(1318,0,1,0):316\n"
	if err := os.WriteFile(path, []byte(dangling), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := releaseChunkLocks(dir, now, log)
	if err != nil || n != 1 {
		t.Fatalf("dangling WRITE: %d, %v; want 1 line appended", n, err)
	}
	b, _ := os.ReadFile(path)
	if want := dangling + "2588: 1796222300|UNLOCK(316)\n"; string(b) != want {
		t.Fatalf("changelog.1.mfs:\n%s\nwant:\n%s", b, want)
	}
	// A file that is not a contiguous changelog is left alone; the promotion goes on.
	holed := []byte("10: 1796222290|WRITE(3,0,1,0):2\n12: 1796222290|IDLE()\n")
	if err := os.WriteFile(path, holed, 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := releaseChunkLocks(dir, now, log); n != 0 || err != nil {
		t.Fatalf("holed file: %d, %v; want 0, nil", n, err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, holed) {
		t.Fatalf("holed file changed:\n%s", b)
	}
}
