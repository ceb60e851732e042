package failover

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
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
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(logf)
		if m = writeRE.FindSubmatch(b); m != nil && bytes.Contains(b, []byte("|UNLOCK("+string(m[3])+")\n")) {
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
	b, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	at := writeRE.FindIndex(b)
	// Cut after the WRITE, plus a torn line as a kill can leave (prepareLocal cuts it).
	if err := os.WriteFile(logf, append(b[:at[1]+1:at[1]+1], "99999: 17962"...), 0o644); err != nil {
		t.Fatal(err)
	}
	lockVersion, _ := strconv.ParseUint(string(m[1]), 10, 64)
	lockTS, _ := strconv.ParseUint(string(m[2]), 10, 64)
	chunk := string(m[3])

	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	want, err := prepareLocal(data, log)
	if err != nil || want != lockVersion+1 {
		t.Fatalf("prepareLocal: want %d, %v; the WRITE is line %d", want, err, lockVersion)
	}
	first, added, err := releaseLocalChunkLocks(data, want-1, time.Now(), log)
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
	after, err = os.ReadFile(logf)
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
