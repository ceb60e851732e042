package durable

import (
	"os"
	"path/filepath"
	"testing"
)

// CopyFile copies the bytes and replaces what dst held before.
func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.WriteFile(src, []byte("metadata"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte("an older and longer file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CopyFile(src, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "metadata" {
		t.Fatalf("dst holds %q", b)
	}
	if err := CopyFile(filepath.Join(dir, "none"), dst); err == nil {
		t.Fatal("copy of a missing file: no error")
	}
}
