package mfstest

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
)

// DanglingLock is a chunk that a killed master's changelog leaves locked: its WRITE line is
// the changelog's last (see KillMidWrite).
type DanglingLock struct {
	File      string // the file written, through the mount
	Inode     uint64
	Changelog string // the master's changelog.0.mfs
	Version   uint64 // the WRITE line that locked the chunk
	Time      uint64 // its timestamp
	Chunk     uint64
	writeRE   *regexp.Regexp // the file's WRITE lines: version, time, chunk
}

// KillMidWrite writes a file through mnt, the mount of l's small cluster (SmallCluster), waits
// until the master's changelog.0.mfs holds the file's WRITE and UNLOCK, kills the master
// (kill -9) and cuts the changelog right after the WRITE: what a master killed before the
// client's WRITE_CHUNK_END leaves.
func KillMidWrite(ctx context.Context, t testing.TB, l *lab.Lab, mnt string) DanglingLock {
	t.Helper()
	d := DanglingLock{File: filepath.Join(mnt, "target"), Changelog: filepath.Join(l.MasterDataDir(lab.HostMasterA), "changelog.0.mfs")}
	if err := os.WriteFile(d.File, []byte("first\n"), 0o644); err != nil { // WRITE, LENGTH, UNLOCK
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(d.File, &st); err != nil {
		t.Fatal(err)
	}
	d.Inode = st.Ino
	d.writeRE = regexp.MustCompile(fmt.Sprintf(`(?m)^(\d+): (\d+)\|WRITE\(%d,0,\d,\d\):(\d+)$`, st.Ino))
	var m [][]byte
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(d.Changelog)
		if m = d.writeRE.FindSubmatch(b); m != nil && bytes.Contains(b, []byte("|UNLOCK("+string(m[3])+")\n")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the master's changelog does not hold the file's WRITE and UNLOCK:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := l.KillProcess(ctx, lab.HostMasterA, lab.RoleMaster); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(d.Changelog)
	if err != nil {
		t.Fatal(err)
	}
	at := d.writeRE.FindIndex(b)
	if err := os.WriteFile(d.Changelog, b[:at[1]+1], 0o644); err != nil {
		t.Fatal(err)
	}
	d.Version, _ = strconv.ParseUint(string(m[1]), 10, 64)
	d.Time, _ = strconv.ParseUint(string(m[2]), 10, 64)
	d.Chunk, _ = strconv.ParseUint(string(m[3]), 10, 64)
	return d
}

// WriteAgain writes into the file's existing chunk through the mount (no O_TRUNC: a truncation
// to 0 would drop the chunk instead of writing it) and returns the timestamp of the master's
// new WRITE of the file, the time it granted the chunk again. It fails the test without one.
func (d DanglingLock) WriteAgain(t testing.TB) uint64 {
	t.Helper()
	f, err := os.OpenFile(d.File, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("second\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(d.Changelog)
	if err != nil {
		t.Fatal(err)
	}
	var granted uint64
	for _, sm := range d.writeRE.FindAllSubmatch(after, -1) {
		if v, _ := strconv.ParseUint(string(sm[1]), 10, 64); v > d.Version {
			granted, _ = strconv.ParseUint(string(sm[2]), 10, 64)
		}
	}
	if granted == 0 {
		t.Fatalf("no new WRITE of inode %d in the restarted master's changelog:\n%s", d.Inode, after[max(0, len(after)-600):])
	}
	return granted
}
