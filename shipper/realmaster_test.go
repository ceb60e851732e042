package shipper

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/mfstest"
)

// TestRealMasterAndClient runs the real mfsmaster and a real mfsmount in network namespaces,
// works on files through the mount (create, write-less files, rename, hard and symbolic links,
// attributes, delete), restarts the master cleanly in the middle, and checks that the stream
// holds exactly the master's changelog: the same lines, byte for byte, each once, in order.
func TestRealMasterAndClient(t *testing.T) {
	mfs := mfstest.RequireMooseFS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.New(lab.Config{Name: fmt.Sprintf("sh%d", os.Getpid()%100000), Dir: t.TempDir(),
		Hosts: []lab.HostSpec{{Name: lab.HostMasterA}, {Name: lab.HostClient}}, MooseFS: mfs})
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
	n := startNATS(t)
	data := l.MasterDataDir(lab.HostMasterA)
	r := startShipper(t, n, data, KindMaster)

	work := func(round string) {
		t.Helper()
		dir := filepath.Join(mnt, "dir-"+round)
		must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
		for i := 0; i < 20; i++ {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f,%d (%%)é\t%s.txt", i, round)))
			must(t, err)
			must(t, f.Close())
		}
		must(t, os.Rename(filepath.Join(dir, "f,0 (%)é\t"+round+".txt"), filepath.Join(dir, "sub", "renamed:|.txt")))
		must(t, os.Link(filepath.Join(dir, "f,1 (%)é\t"+round+".txt"), filepath.Join(dir, "hard")))
		must(t, os.Symlink("sub/renamed:|.txt", filepath.Join(dir, "sym")))
		must(t, os.Chmod(filepath.Join(dir, "hard"), 0o600))
		must(t, os.Truncate(filepath.Join(dir, "hard"), 0))
		must(t, os.Remove(filepath.Join(dir, "f,2 (%)é\t"+round+".txt")))
		must(t, os.RemoveAll(filepath.Join(dir, "sub")))
	}
	work("one")
	if err := l.StopMaster(ctx, lab.HostMasterA); err != nil {
		t.Fatal(err)
	}
	if err := l.StartMaster(ctx, lab.HostMasterA); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mount to reach the restarted master", func() bool {
		return os.Mkdir(filepath.Join(mnt, "after-restart"), 0o755) == nil
	})
	work("two")

	// The master flushes its changelog lazily: compare once the file has not changed for a
	// while and its last line is shipped.
	var want []byte
	changed := time.Now()
	waitFor(t, "the master's changelog to settle and its last line to be shipped", func() bool {
		cur := masterChangelog(t, data)
		if !bytes.Equal(cur, want) {
			want, changed = cur, time.Now()
			return false
		}
		last := bytes.LastIndexByte(want[:len(want)-1], '\n')
		v, _, err := changelog.ParseVersion(want[last+1 : len(want)-1])
		return time.Since(changed) > 1500*time.Millisecond && err == nil && r.sh.Shipped().Next == v+1
	})
	var prev uint64
	for _, ln := range bytes.Split(bytes.TrimSuffix(want, []byte{'\n'}), []byte{'\n'}) {
		v, _, _ := changelog.ParseVersion(ln)
		if prev != 0 && v != prev+1 {
			t.Logf("the master's changelog jumps from %d to %d (bridged by its metadata file)", prev, v)
		}
		prev = v
	}
	got := streamContent(t, n)
	if len(got) != 1 || got[1] != string(want) {
		t.Fatalf("stream timeline 1 holds %s; the master's changelog is %s (other timelines: %d)", summary(got[1]), summary(string(want)), len(got)-1)
	}
	if !strings.Contains(string(want), "MOVE(") || !strings.Contains(string(want), "LINK(") || !strings.Contains(string(want), "SYMLINK(") || !strings.Contains(string(want), "UNLINK(") {
		t.Fatalf("the workload did not produce the expected operations:\n%s", want)
	}
}

// masterChangelog is the concatenation of a master's changelog files, oldest first, with the
// lines a version repeats across files (none, in a master's files) kept once.
func masterChangelog(t *testing.T, dir string) []byte {
	t.Helper()
	logs, err := listLogs(dir, KindMaster)
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(logs, func(i, j int) bool { return logs[i].order < logs[j].order })
	var out []byte
	for _, f := range logs {
		b, err := os.ReadFile(f.path(dir))
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			out = append(out, b[:i+1]...) // whole lines only
		}
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
