package failover_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/deploy/lab/ha"
	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/chunklock"
	"github.com/mfsha/mfsha/internal/mfsclient"
)

// TestFailoverAdoptsPendingRepairs: a chunk the last term was still checking when it ended
// (ma's term, switched over to mb before the chunkservers came back) is checked and repaired
// by the next master. The chunk is made lost as a master that died between logging a WRITE
// and the chunkservers' create leaves it: its copies are removed from the stopped
// chunkservers' disks. ma's pending check is the repairs record its term would have written;
// the switchover runs through the real nodes, and mb's master must adopt the record, wait
// while it cannot tell (no chunkserver), then repair the file once both are back: the file
// reads as a hole, where every read failed, and the record is cleared.
func TestFailoverAdoptsPendingRepairs(t *testing.T) {
	c := newCluster(t, "r")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	epoch := c.before(ctx, 2)
	c.stopWriter(ctx) // it would block while the chunkservers are away
	data := bytes.Repeat([]byte("L"), 5000)
	c.must("write lost", c.l.WriteFile(ctx, lab.HostClient, "lost", data))
	fi, err := os.Stat(filepath.Join(c.mnt, "lost"))
	c.must("stat lost", err)
	ino := uint32(fi.Sys().(*syscall.Stat_t).Ino)
	ver := c.l.MooseFS().Version
	dial := mfsclient.DialFunc(c.l.Dialer(lab.HostClient))
	chunkOf := func() mfsclient.Chunk {
		t.Helper()
		s, err := mfsclient.Register(ctx, dial, c.l.MasterAddr(), ver, "test")
		c.must("register", err)
		defer s.Close(ctx)
		ch, err := s.Chunk(ctx, ino, 0)
		c.must("chunk of lost", err)
		return ch
	}
	ch := chunkOf()
	if ch.ID == 0 {
		t.Fatalf("lost's chunk: %+v; want one", ch)
	}
	c.caughtUp(ctx, lab.HostMasterB)

	// The chunk loses every copy while the chunkservers are away.
	removed := 0
	for _, h := range []string{lab.HostMasterB, lab.HostChunk} {
		c.must("stop chunkserver "+h, c.l.Stop(ctx, h, lab.RoleChunkserver))
		files, _ := filepath.Glob(filepath.Join(c.l.ChunkserverDataDir(h), "*", "*", fmt.Sprintf("chunk_%016X_*.mfs", ch.ID)))
		for _, f := range files {
			c.must("remove a copy", os.Remove(f))
			removed++
		}
		// A chunkserver stopped gracefully lists its chunks in .chunkdb and trusts it at its
		// next start (no scan): it would report the removed copy. A chunk that was never
		// created is in no list.
		dbs, _ := filepath.Glob(filepath.Join(c.l.ChunkserverDataDir(h), "*", ".chunkdb"))
		for _, f := range dbs {
			c.must("remove the chunkserver's chunk list", os.Remove(f))
		}
	}
	if removed == 0 {
		t.Fatalf("no copy of chunk %d on the chunkservers' disks", ch.ID)
	}
	// ma's term was checking it (what repairLost writes before it checks). c.lease was opened
	// before ma's node made the members bucket: open the buckets again.
	lease, closeNC, err := ha.Lease(ctx, c.l, lab.HostClient, c.name, c.urls)
	c.must("lease and members buckets", err)
	defer closeNC()
	lock := chunklock.Lock{Chunk: ch.ID, Inode: ino, Index: 0, Version: 1, Time: uint32(time.Now().Unix()), Op: "WRITE"}
	_, err = lease.WriteRepairs(ctx, failover.RepairsRecord{Holder: lab.HostMasterA, Epoch: epoch, Locks: []chunklock.Lock{lock}, Written: time.Now().UTC()})
	c.must("write ma's pending repairs", err)

	c.switchover(ctx, lab.HostMasterB)
	epoch2 := c.waitMaster(ctx, lab.HostMasterB)

	// mb adopted it: the record is mb's term's now, and the chunk is still the file's
	// (nothing repaired while no chunkserver is there to tell).
	var rec failover.RepairsRecord
	for deadline := time.Now().Add(30 * time.Second); ; {
		rec, _, err = lease.Repairs(ctx)
		if err == nil && rec.Epoch == epoch2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the repairs record is %+v (%v); want mb's term (epoch %d) to have adopted ma's", rec, err, epoch2)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rec.Holder != lab.HostMasterB || !slices.ContainsFunc(rec.Locks, func(l chunklock.Lock) bool { return l.Chunk == ch.ID && l.Inode == ino }) {
		t.Fatalf("mb's repairs record %+v; want ma's pending lock adopted", rec)
	}
	if now := chunkOf(); now.ID != ch.ID {
		t.Fatalf("lost's chunk is %d before the chunkservers are back; want %d kept", now.ID, ch.ID)
	}

	for _, h := range []string{lab.HostMasterB, lab.HostChunk} {
		c.must("start chunkserver "+h, c.l.StartChunkserver(ctx, h))
	}
	start := time.Now()
	for {
		if _, rev, err := lease.Repairs(ctx); err == nil && rev == 0 {
			break // settled and cleared
		}
		if time.Since(start) > time.Minute {
			t.Fatal("mb's term never cleared its repairs record")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("settled and cleared %.1fs after the chunkservers were started", time.Since(start).Seconds())
	b, _ := os.ReadFile(ha.NodeLog(c.l, lab.HostMasterB))
	if !slices.ContainsFunc(strings.Split(string(b), "\n"), func(line string) bool {
		return strings.Contains(line, "repaired a file") && strings.Contains(line, fmt.Sprintf("inode=%d ", ino))
	}) {
		t.Fatalf("mb's node log does not show the repair of inode %d", ino)
	}
	if now := chunkOf(); now.ID != 0 {
		t.Fatalf("lost's chunk is %d after the repair; want 0 (a hole)", now.ID)
	}
	got, err := c.l.ReadFile(ctx, lab.HostClient, "lost")
	if err != nil || !bytes.Equal(got, make([]byte, len(data))) {
		t.Fatalf("the repaired file reads %d bytes (%v); want %d zeros (a hole)", len(got), err, len(data))
	}
	c.verify(ctx) // the files before are untouched
}
