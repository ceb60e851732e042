package chunklock

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/mfstest"
)

// TestNextChunkBound: the bound follows the chunk ids lines allocate or add, ignores numbers
// too far above it to be chunk ids (timestamps, lengths), and takes NEXTCHUNKID as given.
func TestNextChunkBound(t *testing.T) {
	var tr Tracker
	tr.SeedNextChunk(100)
	for i, line := range []string{
		"10: 1700000000|CREATE(1,a,1,438,18,0,0,0):5",  // inode 5: below the bound, changes nothing
		"11: 1700000000|WRITE(5,0,1,0):100",            // allocates 100
		"12: 1700000000|LENGTH(5,5000000000,0)",        // a length far above: not a chunk id
		"13: 1700000000|CHUNKADD(900000,1,1700000120)", // a chunkserver's unknown chunk
	} {
		if err := tr.Add([]byte(line)); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
	}
	if got := tr.NextChunkBound(); got != 900001 {
		t.Fatalf("bound %d; want 900001 (CHUNKADD's chunk + 1)", got)
	}
	if err := tr.Add([]byte("14: 1700000000|NEXTCHUNKID(5000000000)")); err != nil {
		t.Fatal(err)
	}
	if got := tr.NextChunkBound(); got != 5000000000 {
		t.Fatalf("bound %d after NEXTCHUNKID; want 5000000000", got)
	}
}

// TestRealMasterSkipsChunkIDs: the real mfsmaster of the release under test loads a changelog
// ending with SkipChunks' NEXTCHUNKID (its version counts it), and the next chunk it allocates
// for a new file is the skipped-to id, not the one after the lines'.
func TestRealMasterSkipsChunkIDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, mnt := mfstest.SmallCluster(ctx, t, fmt.Sprintf("cn%d", os.Getpid()%100000))
	if err := os.WriteFile(filepath.Join(mnt, "before"), []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := l.MasterDataDir(lab.HostMasterA)
	logf := filepath.Join(data, "changelog.0.mfs")
	writeRE := regexp.MustCompile(`(?m)^(\d+): \d+\|WRITE\(\d+,0,\d,\d\):(\d+)$`)
	waitFor(t, "the master's changelog to hold the file's WRITE and UNLOCK", func() bool {
		b, _ := os.ReadFile(logf)
		return writeRE.Match(b) && regexp.MustCompile(`\|UNLOCK\(\d+\)\n`).Match(b)
	})
	if err := l.KillProcess(ctx, lab.HostMasterA, lab.RoleMaster); err != nil {
		t.Fatal(err)
	}
	var tr Tracker // the changelog starts with the file system: every line is seen
	if err := tr.ScanFile(logf); err != nil {
		t.Fatal(err)
	}
	id, err := tr.SkipChunks(logf, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StartMaster(ctx, lab.HostMasterA, "-a"); err != nil {
		t.Fatal(err)
	}
	v, err := lab.MasterVersion(ctx, l.Dialer(lab.HostClient), l.MasterAddr())
	if err != nil {
		t.Fatal(err)
	}
	if v < tr.Last()+1 {
		t.Fatalf("the restarted master serves version %d; want at least %d (NEXTCHUNKID loaded)", v, tr.Last()+1)
	}
	if err := os.WriteFile(filepath.Join(mnt, "after"), []byte("after\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var chunk uint64
	waitFor(t, "the new file's WRITE", func() bool {
		b, _ := os.ReadFile(logf)
		for _, m := range writeRE.FindAllSubmatch(b, -1) {
			if lv, _ := strconv.ParseUint(string(m[1]), 10, 64); lv > tr.Last() {
				chunk, _ = strconv.ParseUint(string(m[2]), 10, 64)
				return true
			}
		}
		return false
	})
	if chunk != id {
		t.Fatalf("the new file got chunk %d; want %d (the id NEXTCHUNKID skipped to)", chunk, id)
	}
	t.Logf("NEXTCHUNKID(%d) loaded at version %d; the next file's chunk is %d", id, tr.Last(), chunk)
}
