package restorer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFoldMemoryCheck: a metadata file that would need more memory than the host has is
// refused before mfsmaster runs, with an error naming the file, the need and what is
// available; a small one passes.
func TestFoldMemoryCheck(t *testing.T) {
	avail, src, err := Available()
	if err != nil {
		t.Fatal(err)
	}
	if avail <= 0 || src == "" {
		t.Fatalf("Available() = %d, %q: want a positive amount and its source", avail, src)
	}
	dir := t.TempDir()
	small := filepath.Join(dir, "small.mfs")
	if err := os.WriteFile(small, []byte("MFSM NEW"), 0o644); err != nil {
		t.Fatal(err)
	}
	if avail > FoldNeed(8) {
		if err := checkFoldMemory(small); err != nil {
			t.Fatalf("8-byte metadata with %d MB available: %v", avail>>20, err)
		}
	}
	// A sparse file: its size is what the estimate reads, no disk is used.
	big := filepath.Join(dir, "big.mfs")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(avail/foldBytesPerMeta + 1<<30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	err = checkFoldMemory(big)
	if !errors.Is(err, ErrNoMemory) {
		t.Fatalf("metadata of %d MB with %d MB available: got %v, want ErrNoMemory", (avail/foldBytesPerMeta+1<<30)>>20, avail>>20, err)
	}
	for _, want := range []string{big, "needs about", "MB available", src} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if err := checkFoldMemory(filepath.Join(dir, "missing.mfs")); err == nil || errors.Is(err, ErrNoMemory) {
		t.Fatalf("missing metadata: got %v, want a stat error", err)
	}
}
