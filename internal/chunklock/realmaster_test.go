package chunklock

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/mfstest"
)

// TestRealMasterReleasesDanglingLock builds, with the real mfsmaster of the release under test
// (MFSHA_MOOSEFS), what a promoted master loads after a kill -9 in the middle of a client's
// write: a changelog whose last line is the WRITE that locked a chunk, without its UNLOCK.
// Loaded as is, that chunk stays locked for LockTimeout after the line (measured: the client's
// next write to it took 124.5 s). ReleaseFile must find exactly that chunk and append its
// UNLOCK; the master must load the file (its version counts the UNLOCK), and a client's write
// to the file must be granted before the lock could have expired on its own: the master's
// own timestamps show it.
func TestRealMasterReleasesDanglingLock(t *testing.T) {
	mfs := mfstest.RequireMooseFS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.New(lab.Config{Name: fmt.Sprintf("cl%d", os.Getpid()%100000), Dir: t.TempDir(), MooseFS: mfs,
		Hosts: []lab.HostSpec{{Name: lab.HostMasterA}, {Name: lab.HostChunk}, {Name: lab.HostClient}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	mnt, err := l.StartCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(mnt, "target")
	if err := os.WriteFile(file, []byte("first\n"), 0o644); err != nil { // WRITE, LENGTH, UNLOCK
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil {
		t.Fatal(err)
	}
	data := l.MasterDataDir(lab.HostMasterA)
	logf := filepath.Join(data, "changelog.0.mfs")
	writeRE := regexp.MustCompile(fmt.Sprintf(`(?m)^(\d+): (\d+)\|WRITE\(%d,0,\d,\d\):(\d+)$`, st.Ino))
	var m [][]byte
	waitFor(t, "the master's changelog to hold the file's WRITE and UNLOCK", func() bool {
		b, _ := os.ReadFile(logf)
		m = writeRE.FindSubmatch(b)
		return m != nil && bytes.Contains(b, []byte("|UNLOCK("+string(m[3])+")\n"))
	})
	if err := l.KillProcess(ctx, lab.HostMasterA, lab.RoleMaster); err != nil {
		t.Fatal(err)
	}
	// Cut the changelog right after that WRITE: the lines a promoted master would load if the
	// old one died before the client's WRITE_CHUNK_END.
	b, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	at := writeRE.FindIndex(b)
	if err := os.WriteFile(logf, b[:at[1]+1], 0o644); err != nil {
		t.Fatal(err)
	}
	lockVersion, _ := strconv.ParseUint(string(m[1]), 10, 64)
	lockTS, _ := strconv.ParseUint(string(m[2]), 10, 64)
	chunk, _ := strconv.ParseUint(string(m[3]), 10, 64)

	// The changelog starts with the file system (the lab's master began empty): the tracker
	// sees every line.
	var tr Tracker
	locks, err := tr.ReleaseFile(logf, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 1 || locks[0].Chunk != chunk || locks[0].Version != lockVersion || locks[0].Inode != uint32(st.Ino) {
		t.Fatalf("released %+v; want chunk %d locked by line %d for inode %d", locks, chunk, lockVersion, st.Ino)
	}

	if err := l.StartMaster(ctx, lab.HostMasterA, "-a"); err != nil {
		t.Fatal(err)
	}
	v, err := lab.MasterVersion(ctx, l.Dialer(lab.HostClient), l.MasterAddr())
	if err != nil {
		t.Fatal(err)
	}
	if v < lockVersion+2 {
		t.Fatalf("the restarted master serves version %d; want at least %d (the WRITE %d and our UNLOCK loaded)", v, lockVersion+2, lockVersion)
	}
	// Write into the file's existing chunk (no O_TRUNC: a truncation to 0 would drop the chunk
	// instead of writing it).
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("second\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The master granted the chunk again: a new WRITE of that inode, timestamped before the
	// dangling lock would have expired (lockTS + 120): only the appended UNLOCK allows that.
	after, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	var granted uint64
	for _, sm := range writeRE.FindAllSubmatch(after, -1) {
		if v, _ := strconv.ParseUint(string(sm[1]), 10, 64); v > lockVersion {
			granted, _ = strconv.ParseUint(string(sm[2]), 10, 64)
		}
	}
	if granted == 0 {
		t.Fatalf("no new WRITE of inode %d in the restarted master's changelog:\n%s", st.Ino, after[max(0, len(after)-600):])
	}
	if granted >= lockTS+uint64(LockTimeout/time.Second) {
		t.Fatalf("the chunk was granted at %d, after the dangling lock expired on its own (%d + %d): the UNLOCK did not release it",
			granted, lockTS, int(LockTimeout/time.Second))
	}
	t.Logf("chunk %d locked at %d by line %d, released by our UNLOCK, granted again at %d (%d s later, not %d)",
		chunk, lockTS, lockVersion, granted, granted-lockTS, int(LockTimeout/time.Second))
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
