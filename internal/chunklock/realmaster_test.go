package chunklock

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
func TestRealMasterReleasesDanglingLock(t *testing.T) { realDanglingLock(t, false) }

// TestRealMasterReleasesFoldedLock: the same, but the lock is in the metadata only (as after a
// standby folded the WRITE): the master loads the cut changelog and stops cleanly, its
// metadata.mfs keeps the lock (MetadataLocks must read it from the real file), the changelog
// goes away, and the UNLOCK is a new changelog.1.mfs from the metadata's version.
func TestRealMasterReleasesFoldedLock(t *testing.T) { realDanglingLock(t, true) }

func realDanglingLock(t *testing.T, folded bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, mnt := mfstest.SmallCluster(ctx, t, fmt.Sprintf("c%s%d", map[bool]string{false: "l", true: "f"}[folded], os.Getpid()%100000))
	d := mfstest.KillMidWrite(ctx, t, l, mnt)
	data := l.MasterDataDir(lab.HostMasterA)
	logf, lockVersion, lockTS, chunk := d.Changelog, d.Version, d.Time, d.Chunk

	minServe := lockVersion + 2 // the WRITE and our UNLOCK loaded
	if folded {
		if err := l.StartMaster(ctx, lab.HostMasterA, "-a"); err != nil {
			t.Fatal(err)
		}
		if err := l.StopMaster(ctx, lab.HostMasterA); err != nil { // a clean stop writes metadata.mfs
			t.Fatal(err)
		}
		metaV, held, err := MetadataLocks(filepath.Join(data, "metadata.mfs"), time.Now())
		if err != nil || metaV <= lockVersion || len(held) != 1 || held[0].Chunk != chunk || uint64(held[0].Time) != lockTS {
			t.Fatalf("the metadata after the fold: version %d, locks %+v, %v; want chunk %d locked at %d", metaV, held, err, chunk, lockTS)
		}
		// Only the metadata shows the lock now. (4.x renames changelog.0.mfs at a clean stop.)
		logs, _ := filepath.Glob(filepath.Join(data, "changelog.*.mfs"))
		for _, p := range logs {
			if err := os.Rename(p, filepath.Join(t.TempDir(), filepath.Base(p))); err != nil {
				t.Fatal(err)
			}
		}
		var tr Tracker
		tr.Seed(held)
		unlock := AppendUnlocks(nil, tr.Held(time.Now()), metaV, time.Now())
		if err := os.WriteFile(filepath.Join(data, "changelog.1.mfs"), unlock, 0o644); err != nil {
			t.Fatal(err)
		}
		minServe = metaV + 1 // the metadata and our UNLOCK
	} else {
		// The changelog starts with the file system (the lab's master began empty): the
		// tracker sees every line.
		var tr Tracker
		locks, err := tr.ReleaseFile(logf, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(locks) != 1 || locks[0].Chunk != chunk || locks[0].Version != lockVersion || locks[0].Inode != uint32(d.Inode) {
			t.Fatalf("released %+v; want chunk %d locked by line %d for inode %d", locks, chunk, lockVersion, d.Inode)
		}
	}

	if err := l.StartMaster(ctx, lab.HostMasterA, "-a"); err != nil {
		t.Fatal(err)
	}
	v, err := lab.MasterVersion(ctx, l.Dialer(lab.HostClient), l.MasterAddr())
	if err != nil {
		t.Fatal(err)
	}
	if v < minServe {
		t.Fatalf("the restarted master serves version %d; want at least %d (our UNLOCK loaded)", v, minServe)
	}
	// The master granted the chunk again: a new WRITE of that inode, timestamped before the
	// dangling lock would have expired (lockTS + 120): only the appended UNLOCK allows that.
	granted := d.WriteAgain(t)
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
