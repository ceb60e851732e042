package restorer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/jstest"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/shipper"
)

// volatile are the fields of mfsmetadump's text that no changelog line carries, so a replay
// cannot reproduce them: a session's operation counters (c:[...] this hour, l:[...] the last)
// and access times (a:), which the master updates without logging every access.
var volatile = []*regexp.Regexp{
	regexp.MustCompile(`\|c:\[[0-9,]*\]`),
	regexp.MustCompile(`\|l:\[[0-9,]*\]`),
	regexp.MustCompile(`\|a: *[0-9]+,`), // 4.x pads the number
}

// dump is mfsmetadump's text of a metadata file, line by line, with the volatile fields
// blanked; everything else must be equal.
func dump(t *testing.T, path string) []string {
	t.Helper()
	bin, _ := mfstest.Path("mfsmetadump")
	out, err := exec.Command(bin, path).Output()
	if err != nil {
		t.Fatalf("mfsmetadump %s: %v", path, err)
	}
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		for _, re := range volatile {
			l = re.ReplaceAllString(l, "|volatile")
		}
		lines[i] = l
	}
	return lines
}

// realCluster is a real master and mount in a lab of two hosts (ma, cl), and a shipper
// publishing the master's changelog and snapshots to an embedded JetStream server.
type realCluster struct {
	l           *lab.Lab
	mnt, data   string
	js          jetstream.JetStream
	store       *snapshot.Store
	sh          *shipper.Shipper
	stopShipper func()
}

// newRealCluster starts a lab of hosts (default: ma and cl) with StartCluster, an embedded
// JetStream server and a shipper of the master's files.
func newRealCluster(ctx context.Context, t *testing.T, name string, hosts ...lab.HostSpec) realCluster {
	t.Helper()
	mfs := mfstest.RequireMooseFS(t)
	if hosts == nil {
		hosts = []lab.HostSpec{{Name: lab.HostMasterA}, {Name: lab.HostClient}}
	}
	l, err := lab.New(lab.Config{Name: fmt.Sprintf("%s%d", name, os.Getpid()%100000), Dir: t.TempDir(),
		Hosts: hosts, MooseFS: mfs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down(context.Background()) })
	mnt, err := l.StartCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	js := jstest.Start(t)
	store := signedStore(t, js)
	data := l.MasterDataDir(lab.HostMasterA)
	// Snapshots checked often: a test's master replaces its snapshot files within seconds
	// (4.x renames metadata.mfs at start, shifts metadata.mfs.back at a stop), and one is
	// uploaded only once its version's line is shipped.
	sh, stop := startShipper(t, js, store, data, func(c *shipper.Config) { c.SnapshotPoll = 50 * time.Millisecond })
	return realCluster{l: l, mnt: mnt, data: data, js: js, store: store, sh: sh, stopShipper: stop}
}

// TestRestoredEqualsMastersOwn: a real master, a real mount doing creates, renames, links,
// chmod and deletes, a clean stop that saves the master's own metadata of version V; the
// metadata restored from the stream to the state after line V-1, and the metadata a standby
// materialized, are the same, per mfsmetadump.
func TestRestoredEqualsMastersOwn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newRealCluster(ctx, t, "rs")
	l, mnt, js, store, data, sh := c.l, c.mnt, c.js, c.store, c.data, c.sh

	for i := 0; i < 30; i++ {
		d := filepath.Join(mnt, fmt.Sprintf("d%d", i%5))
		os.MkdirAll(d, 0o755)
		f, err := os.Create(filepath.Join(d, fmt.Sprintf("f,%d é.txt", i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	// Each step must happen: a failed one would leave the comparison below with less to prove.
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s through mfsmount: %v", what, err)
		}
	}
	must("rename", os.Rename(filepath.Join(mnt, "d1"), filepath.Join(mnt, "moved")))
	must("link", os.Link(filepath.Join(mnt, "d2", "f,2 é.txt"), filepath.Join(mnt, "hard")))
	must("symlink", os.Symlink("moved", filepath.Join(mnt, "sym")))
	must("chmod", os.Chmod(filepath.Join(mnt, "hard"), 0o600))
	must("rm -r", os.RemoveAll(filepath.Join(mnt, "d3")))
	if err := l.StopMaster(ctx, lab.HostMasterA); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(data, "metadata.mfs")
	h, err := metafile.Check(own)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for sh.Shipped().Next < h.Version && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := sh.Shipped().Next; got != h.Version {
		t.Fatalf("shipped up to %d; the master's own metadata has version %d", got-1, h.Version)
	}
	tls, _ := stream.Timelines(ctx, js, cluster)
	snaps, _ := store.List(ctx)
	p, err := CalcPlan(tls, snaps, 0, Target{Version: h.Version - 1})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	o, err := Apply(ctx, js, store, p, Options{Cluster: cluster, OutDir: out, Mfsmaster: mfstest.Mfsmaster(t), Verifier: testVerifier})
	if err != nil {
		t.Fatal(err)
	}
	// The standby's materialized metadata too.
	sdir := t.TempDir()
	scfg := DefaultStandbyConfig()
	scfg.Cluster, scfg.Dir, scfg.FoldLines, scfg.Poll = cluster, sdir, 1, 50*time.Millisecond
	scfg.Mfsmaster = mfstest.Mfsmaster(t)
	scfg.Verifier = testVerifier
	sb, err := NewStandby(scfg, js, store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	sbctx, sbcancel := context.WithCancel(ctx)
	sbdone := make(chan error, 1)
	go func() { sbdone <- sb.Run(sbctx) }()
	for deadline := time.Now().Add(30 * time.Second); sb.Materialized().Version != h.Version; {
		if time.Now().After(deadline) {
			t.Fatalf("standby materialized %+v, want version %d", sb.Materialized(), h.Version)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sbcancel()
	<-sbdone
	if got := dump(t, filepath.Join(sdir, "metadata.mfs")); strings.Join(got, "\n") != strings.Join(dump(t, own), "\n") {
		t.Errorf("the standby's materialized metadata differs from the master's own at version %d", h.Version)
	}

	a, b := dump(t, own), dump(t, filepath.Join(out, "metadata.mfs"))
	if o.Version != h.Version || len(a) < 50 {
		t.Fatalf("restored version %d, want %d; mfsmetadump gave %d lines", o.Version, h.Version, len(a))
	}
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			t.Errorf("line %d differs:\n master:   %s\n restored: %s", i+1, x, y)
		}
	}
}

// TestRmRfStory is the seed's story: directories 1..10 exist, the client runs rm -rf on them,
// the metadata is restored to a moment before, a master is started on the result, and the
// directories are listed again through the same real mount.
func TestRmRfStory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newRealCluster(ctx, t, "rr")
	l, mnt, js, store, data, sh, stopShipper := c.l, c.mnt, c.js, c.store, c.data, c.sh, c.stopShipper

	for i := 1; i <= 10; i++ {
		d := filepath.Join(mnt, fmt.Sprint(i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(d, "file"))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	// Changelog times are whole seconds: leave one between the files and the deletion.
	time.Sleep(1100 * time.Millisecond)
	before := time.Now().Truncate(time.Second).Add(-time.Second)
	time.Sleep(1100 * time.Millisecond)
	for i := 1; i <= 10; i++ {
		if err := os.RemoveAll(filepath.Join(mnt, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
		t.Fatalf("rm -rf left %d entries", len(ents))
	}
	mv, err := lab.MasterVersion(ctx, l.Dialer(lab.HostClient), l.MasterAddr())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for sh.Shipped().Next < mv && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stopShipper()

	if err := l.StopMaster(ctx, lab.HostMasterA); err != nil {
		t.Fatal(err)
	}
	tls, _ := stream.Timelines(ctx, js, cluster)
	snaps, _ := store.List(ctx)
	p, err := CalcPlan(tls, snaps, 0, Target{Time: before})
	if err != nil {
		t.Fatal(err)
	}
	restored := t.TempDir()
	if _, err := Apply(ctx, js, store, p, Options{Cluster: cluster, OutDir: restored, Mfsmaster: mfstest.Mfsmaster(t), Verifier: testVerifier}); err != nil {
		t.Fatal(err)
	}
	// The master's directory gets the restored metadata and nothing newer.
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(restored, "metadata.mfs"))
	if err := os.WriteFile(filepath.Join(data, "metadata.mfs"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.StartMaster(ctx, lab.HostMasterA); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		ents, err := os.ReadDir(mnt)
		if err == nil && len(ents) == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restore the mount lists %d entries (%v), want 1..10", len(ents), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 1; i <= 10; i++ {
		if _, err := os.Stat(filepath.Join(mnt, fmt.Sprint(i), "file")); err != nil {
			t.Fatalf("directory %d after the restore: %v", i, err)
		}
	}
}
