package failover

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/chunklock"
	"github.com/mfsha/mfsha/internal/mfstest"
)

// TestRealMasterRetakeReleasesDanglingLock: what takeOver does at a retake or boot, on the
// real mfsmaster (MFSHA_MOOSEFS). The master is SIGKILLed, its own changelog.0.mfs ending with
// a WRITE whose UNLOCK it never logged (cut there: the client's WRITE_CHUNK_END never came);
// prepareLocal and releaseLocalChunkLocks must find exactly that chunk among the master's own
// files (metadata.mfs.back and changelog.0.mfs), append its UNLOCK, and mfsmaster -a must serve
// past it; a client's write into that chunk is then granted well before the lock's 120 s.
func TestRealMasterRetakeReleasesDanglingLock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, mnt := mfstest.SmallCluster(ctx, t, fmt.Sprintf("rt%d", os.Getpid()%100000))
	d := mfstest.KillMidWrite(ctx, t, l, mnt)
	data, logf := l.MasterDataDir(lab.HostMasterA), d.Changelog
	b, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	// A torn line after the WRITE, as a kill can leave (prepareLocal cuts it).
	if err := os.WriteFile(logf, append(b, "99999: 17962"...), 0o644); err != nil {
		t.Fatal(err)
	}
	lockVersion, lockTS, chunk := d.Version, d.Time, strconv.FormatUint(d.Chunk, 10)

	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	want, err := prepareLocal(data, log)
	if err != nil || want != lockVersion+1 {
		t.Fatalf("prepareLocal: want %d, %v; the WRITE is line %d", want, err, lockVersion)
	}
	first, added, _, err := releaseLocalChunkLocks(data, want-1, time.Now(), log)
	if err != nil || first != want || added != 1 {
		t.Fatalf("releaseLocalChunkLocks: first %d, added %d, %v; want %d, 1", first, added, err, want)
	}
	after, _ := os.ReadFile(logf)
	if !bytes.HasSuffix(after, []byte("|UNLOCK("+chunk+")\n")) || !bytes.Contains(after, []byte(fmt.Sprintf("\n%d: ", want))) {
		t.Fatalf("changelog.0.mfs does not end with UNLOCK(%s) at %d:\n%s", chunk, want, after[max(0, len(after)-300):])
	}
	if err := l.StartMaster(ctx, lab.HostMasterA, "-a"); err != nil {
		t.Fatal(err)
	}
	v, err := lab.MasterVersion(ctx, l.Dialer(lab.HostClient), l.MasterAddr())
	if err != nil {
		t.Fatal(err)
	}
	if v < first+added {
		t.Fatalf("the restarted master serves version %d; want at least %d (our UNLOCK loaded)", v, first+added)
	}
	granted := d.WriteAgain(t)
	if granted >= lockTS+uint64(chunklock.LockTimeout/time.Second) {
		t.Fatalf("the chunk was granted at %d, after the dangling lock expired on its own (%d + 120): the UNLOCK did not release it", granted, lockTS)
	}
	t.Logf("chunk %s locked at %d by line %d, released by UNLOCK at %d, granted again at %d (%d s later, not 120)",
		chunk, lockTS, lockVersion, first, granted, granted-lockTS)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
