package failover

import (
	"bytes"
	"encoding/binary"
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
	if n, err := releaseChunkLocks(dir, now, false, log); n != 0 || err != nil {
		t.Fatalf("without changelog.1.mfs: %d, %v; want 0, nil", n, err)
	}
	path := filepath.Join(dir, "changelog.1.mfs")
	dangling := "2585: 1796222290|CREATE(1002,w000315,1,420,18,0,0,0):1318\n" +
		"2586: 1796222290|ACQUIRE(1,1318)\n" +
		"2587: 1796222290|WRITE(1318,0,1,0):316\n"
	if err := os.WriteFile(path, []byte(dangling), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := releaseChunkLocks(dir, now, false, log)
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
	if n, err := releaseChunkLocks(dir, now, false, log); n != 0 || err != nil {
		t.Fatalf("holed file: %d, %v; want 0, nil", n, err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, holed) {
		t.Fatalf("holed file changed:\n%s", b)
	}
}

// A lock the handed-over metadata keeps (the standby folded the WRITE) is released too: after
// changelog.1.mfs's lines, or in a new changelog.1.mfs from the metadata's version.
func TestReleaseChunkLocksOfTheMetadata(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	now := time.Unix(1796222300, 0)
	dir := t.TempDir()
	// metadata.mfs of version 2588 whose CHNK 1.1 section holds chunk 316 locked until
	// 1796222410 (a WRITE at 1796222290) and chunk 317 unlocked.
	rec := func(chunk uint64, lockedto uint32) []byte {
		b := binary.BigEndian.AppendUint64(nil, chunk)
		b = binary.BigEndian.AppendUint32(b, 1)
		b = binary.BigEndian.AppendUint32(b, lockedto)
		return append(b, 0)
	}
	body := binary.BigEndian.AppendUint64(nil, 400)
	body = append(append(append(body, rec(316, 1796222410)...), rec(317, 0)...), make([]byte, 17)...)
	meta := []byte("MFSM 2.0")
	meta = binary.BigEndian.AppendUint64(meta, 2588)
	meta = binary.BigEndian.AppendUint64(meta, 77)
	meta = append(meta, "CHNK 1.1"...)
	meta = binary.BigEndian.AppendUint64(meta, uint64(len(body)))
	meta = append(append(meta, body...), "[MFS EOF MARKER]"...)
	if err := os.WriteFile(filepath.Join(dir, "metadata.mfs"), meta, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "changelog.1.mfs")
	if n, err := releaseChunkLocks(dir, now, false, log); n != 1 || err != nil {
		t.Fatalf("metadata lock, no changelog.1.mfs: %d, %v; want 1 line", n, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "2588: 1796222300|UNLOCK(316)\n" {
		t.Fatalf("new changelog.1.mfs: %q", b)
	}
	// With lines after the metadata: one that releases the chunk leaves nothing to do.
	if err := os.WriteFile(path, []byte("2588: 1796222295|UNLOCK(316)\n2589: 1796222295|IDLE()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := releaseChunkLocks(dir, now, false, log); n != 0 || err != nil {
		t.Fatalf("the lines release it: %d, %v; want 0", n, err)
	}
	// Lines that do not: the UNLOCK goes after them.
	if err := os.WriteFile(path, []byte("2588: 1796222295|IDLE()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := releaseChunkLocks(dir, now, false, log); n != 1 || err != nil {
		t.Fatalf("lines without its UNLOCK: %d, %v; want 1", n, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "2588: 1796222295|IDLE()\n2589: 1796222300|UNLOCK(316)\n" {
		t.Fatalf("changelog.1.mfs: %q", b)
	}
}
