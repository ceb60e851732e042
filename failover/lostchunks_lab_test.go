package failover

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/chunklock"
	"github.com/mfsha/mfsha/internal/mfsclient"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRepairLostChunkOfUnfinishedWrite drives repairLostChunks against the real mfsmaster and
// chunkserver of the release under test. Two files are written; the chunk of one is removed
// from the chunkserver's disk while it is stopped, which leaves the master what a master that
// died between logging a WRITE and the chunkserver's create leaves: a chunk with no copy.
//   - While the chunkserver is away, the master cannot tell a lost chunk from a late one:
//     nothing may be repaired (the safety rule: a chunkserver that is late is never taken for
//     one without the chunk).
//   - Once it is back, the lost chunk is repaired (erased: the file reads back as a hole, where
//     before every read failed), and the other file's chunk, readable, is left alone.
func TestRepairLostChunkOfUnfinishedWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l, mnt := mfstest.SmallCluster(ctx, t, fmt.Sprintf("lc%d", os.Getpid()%100000))
	ver := l.MooseFS().Version
	dial := mfsclient.DialFunc(l.Dialer(lab.HostClient))
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	lostData, keptData := bytes.Repeat([]byte("L"), 5000), bytes.Repeat([]byte("K"), 7000)
	for name, data := range map[string][]byte{"lost": lostData, "kept": keptData} {
		if err := l.WriteFile(ctx, lab.HostClient, name, data); err != nil {
			t.Fatal(err)
		}
	}
	inode := func(name string) uint32 {
		fi, err := os.Stat(filepath.Join(mnt, name))
		if err != nil {
			t.Fatal(err)
		}
		return uint32(fi.Sys().(*syscall.Stat_t).Ino)
	}
	lostIno, keptIno := inode("lost"), inode("kept")
	chunkOf := func(ino uint32) mfsclient.Chunk {
		t.Helper()
		s, err := mfsclient.Register(ctx, dial, l.MasterAddr(), ver, "test")
		if err != nil {
			t.Fatal(err)
		}
		ch, err := s.Chunk(ctx, ino, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(ctx); err != nil { // the master ends the session (REGISTER_CLOSESESSION)
			t.Fatal(err)
		}
		return ch
	}
	lostChunk, keptChunk := chunkOf(lostIno), chunkOf(keptIno)
	if lostChunk.ID == 0 || keptChunk.ID == 0 || len(lostChunk.Copies) != 1 {
		t.Fatalf("chunks before: lost %+v, kept %+v; want one copy each", lostChunk, keptChunk)
	}

	if err := l.Stop(ctx, lab.HostChunk, lab.RoleChunkserver); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(l.ChunkserverDataDir(lab.HostChunk), "*", "*", fmt.Sprintf("chunk_%016X_*.mfs", lostChunk.ID)))
	if len(files) != 1 {
		t.Fatalf("chunk %d on the chunkserver's disk: %v; want one file", lostChunk.ID, files)
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	locks := []chunklock.Lock{
		{Chunk: lostChunk.ID, Inode: lostIno, Index: 0, Op: "WRITE"},
		{Chunk: keptChunk.ID, Inode: keptIno, Index: 0, Op: "WRITE"},
	}
	m := NewMetrics(nil)

	// The chunkserver is away: the master offers no copy of either chunk, and cannot tell.
	wctx, wcancel := context.WithTimeout(ctx, 4*time.Second)
	repairLostChunks(wctx, dial, l.MasterAddr(), ver, locks, m, log)
	wcancel()
	if n := testutil.ToFloat64(m.LostRepaired); n != 0 {
		t.Fatalf("repaired %v chunks while the chunkserver was disconnected; want none", n)
	}
	if ch := chunkOf(lostIno); ch.ID != lostChunk.ID {
		t.Fatalf("the lost file's chunk is %d after the attempt without its chunkserver; want %d kept", ch.ID, lostChunk.ID)
	}

	if err := l.StartChunkserver(ctx, lab.HostChunk); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	repairLostChunks(ctx, dial, l.MasterAddr(), ver, locks, m, log)
	if ctx.Err() != nil {
		t.Fatal("repairLostChunks did not settle the chunks before the test's deadline")
	}
	t.Logf("settled %.1fs after the chunkserver was started", time.Since(start).Seconds())
	if n := testutil.ToFloat64(m.LostRepaired); n != 1 {
		t.Fatalf("repaired %v chunks; want 1", n)
	}
	if ch := chunkOf(lostIno); ch.ID != 0 {
		t.Fatalf("the lost file's chunk is %d after the repair; want 0 (a hole)", ch.ID)
	}
	if ch := chunkOf(keptIno); ch.ID != keptChunk.ID || len(ch.Copies) != 1 {
		t.Fatalf("the kept file's chunk: %+v; want %d with its copy, untouched", ch, keptChunk.ID)
	}
	got, err := l.ReadFile(ctx, lab.HostClient, "lost")
	if err != nil || !bytes.Equal(got, make([]byte, len(lostData))) {
		t.Fatalf("the repaired file reads %d bytes (%v); want %d zeros (a hole)", len(got), err, len(lostData))
	}
	if got, err := l.ReadFile(ctx, lab.HostClient, "kept"); err != nil || !bytes.Equal(got, keptData) {
		t.Fatalf("the kept file reads %d bytes (%v); want its %d bytes", len(got), err, len(keptData))
	}
	// The client can write the file again: its next write gets a new chunk.
	if err := l.WriteFile(ctx, lab.HostClient, "lost", lostData); err != nil {
		t.Fatal(err)
	}
	if got, err := l.ReadFile(ctx, lab.HostClient, "lost"); err != nil || !bytes.Equal(got, lostData) {
		t.Fatalf("the rewritten file reads %d bytes (%v); want its %d bytes", len(got), err, len(lostData))
	}
}
