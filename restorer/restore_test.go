package restorer

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/jstest"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/shipper"
)

const cluster = "r"

// history is what mfsmaster can replay: SETMETAID, then CREATE of file fN (inode N) as line N.
func history(from, to int) string {
	var b strings.Builder
	for v := from; v <= to; v++ {
		if v == 1 {
			b.WriteString("1: 1700000000|SETMETAID(77)\n")
			continue
		}
		fmt.Fprintf(&b, "%d: %d|CREATE(1,f%d,1,420,18,0,0,0):%d\n", v, 1700000000+v/100, v, v)
	}
	return b.String()
}

// shipped runs a real shipper over a master directory holding lines 1..3001 and a snapshot of
// version 1002, and returns the stream and the snapshot store once both are in.
func shipped(t *testing.T) (jetstream.JetStream, *snapshot.Store, string) {
	t.Helper()
	mfstest.RequireMooseFS(t)
	js := jstest.Start(t)
	ctx := context.Background()
	store := signedStore(t, js)
	dir := t.TempDir()
	snap, version := mfstest.MakeMetadata(t, t.TempDir(), 77, 1000)
	b, _ := os.ReadFile(snap)
	os.WriteFile(filepath.Join(dir, "metadata.mfs.back"), b, 0o644)
	mt := time.Unix(1700000010, 0)
	os.Chtimes(filepath.Join(dir, "metadata.mfs.back"), mt, mt)
	os.WriteFile(filepath.Join(dir, "changelog.0.mfs"), []byte(history(1, 3001)), 0o644)
	sh, _ := startShipper(t, js, store, dir, func(c *shipper.Config) {
		c.Retention, c.MaxBatchBytes, c.SnapshotPoll = 0, 16<<10, 50*time.Millisecond
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_, err := store.Get(ctx, stream.SnapshotName(1, version))
		if sh.Shipped().Next == 3002 && err == nil {
			return js, store, dir
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not shipped: at %+v", sh.Shipped())
	return nil, nil, ""
}

// startShipper runs a real shipper over dir, publishing to js and store, until the test ends
// or stop is called (stop may be called more than once).
func startShipper(t *testing.T, js jetstream.JetStream, store *snapshot.Store, dir string, tune func(*shipper.Config)) (*shipper.Shipper, func()) {
	t.Helper()
	cfg := shipper.DefaultConfig()
	cfg.DataDir, cfg.Kind, cfg.Cluster, cfg.Snapshots, cfg.Poll = dir, shipper.KindMaster, cluster, store, 50*time.Millisecond
	cfg.Signer = testSigner
	if tune != nil {
		tune(&cfg)
	}
	sh, err := shipper.New(cfg, js, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("shipper: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return sh, stop
}

func restore(t *testing.T, js jetstream.JetStream, store *snapshot.Store, target Target, out string, force bool) (Plan, Outcome, error) {
	t.Helper()
	ctx := context.Background()
	tls, err := stream.Timelines(ctx, js, cluster)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := CalcPlan(tls, snaps, 0, target)
	if err != nil {
		return p, Outcome{}, err
	}
	o, err := Apply(ctx, js, store, p, Options{Cluster: cluster, OutDir: out, Force: force, Mfsmaster: mfstest.Mfsmaster(t), Verifier: testVerifier})
	return p, o, err
}

// files lists the names in the root directory of a metadata file, with the real mfsmetadump.
func files(t *testing.T, path string) map[string]bool {
	t.Helper()
	dump, _ := mfstest.Path("mfsmetadump")
	out, err := exec.Command(dump, path).Output()
	if err != nil {
		t.Fatalf("mfsmetadump %s: %v", path, err)
	}
	names := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "|n:"); strings.HasPrefix(l, "EDGE|") && i > 0 {
			names[l[i+3:]] = true
		}
	}
	return names
}

func TestRestoreToVersionAndTime(t *testing.T) {
	js, store, _ := shipped(t)
	for _, tc := range []struct {
		target       Target
		wantSnapshot bool
		last         int // the last file that must exist
	}{
		{Target{Version: 2500}, true, 2500},
		{Target{Version: 500}, false, 500},                   // before the snapshot: from an empty file system
		{Target{Time: time.Unix(1700000020, 0)}, true, 2099}, // lines up to 2099 are at or before :20
		{Target{}, true, 3001},
	} {
		out := t.TempDir()
		p, o, err := restore(t, js, store, tc.target, out, false)
		if err != nil {
			t.Fatalf("%s: %v", tc.target, err)
		}
		if (p.Snapshot != nil) != tc.wantSnapshot || o.Version != uint64(tc.last+1) {
			t.Fatalf("%s: plan %+v, outcome %+v; want snapshot %v, version %d", tc.target, p, o, tc.wantSnapshot, tc.last+1)
		}
		names := files(t, filepath.Join(out, "metadata.mfs"))
		if !names[fmt.Sprintf("f%d", tc.last)] || names[fmt.Sprintf("f%d", tc.last+1)] || !names["f2"] {
			t.Fatalf("%s: restored metadata has %d names; want f2..f%d only", tc.target, len(names), tc.last)
		}
	}
}

func TestRestoreErrors(t *testing.T) {
	js, store, _ := shipped(t)
	out := t.TempDir()
	if _, _, err := restore(t, js, store, Target{Version: 99999}, out, false); !errors.Is(err, ErrAfterNewest) || !strings.Contains(err.Error(), "versions 1..3001") {
		t.Fatalf("after the newest: %v", err)
	}
	if _, _, err := restore(t, js, store, Target{Time: time.Unix(1800000000, 0)}, out, false); !errors.Is(err, ErrAfterNewest) {
		t.Fatalf("time after the newest: %v", err)
	}
	existing := filepath.Join(out, "metadata.mfs")
	os.WriteFile(existing, []byte("precious"), 0o644)
	if _, _, err := restore(t, js, store, Target{Version: 100}, out, false); !errors.Is(err, ErrExists) {
		t.Fatalf("existing metadata: %v", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "precious" {
		t.Fatal("existing metadata was changed")
	}
	if _, o, err := restore(t, js, store, Target{Version: 100}, out, true); err != nil || o.Version != 101 {
		t.Fatalf("--force: %+v, %v", o, err)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 1 {
		t.Fatalf("left behind in %s: %v", out, ents)
	}
}

// publishRaw appends a batch of the given lines to timeline 1 as another writer holding the
// cluster's key would (a shipper with a bug); sum 0 means the right checksum.
func publishRaw(t *testing.T, js jetstream.JetStream, first, last int, sum uint32) uint64 {
	t.Helper()
	return publishText(t, js, first, last, history(first, last), sum)
}

// publishText is publishRaw of the lines given.
func publishText(t *testing.T, js jetstream.JetStream, first, last int, text string, sum uint32) uint64 {
	t.Helper()
	lines := []byte(text)
	info := stream.BatchInfo{Timeline: 1, FirstVersion: uint64(first), LastVersion: uint64(last), Lines: last - first + 1,
		FirstTime: 1700000030, LastTime: 1700000030, Sum: sum}
	if sum == 0 {
		info.Sum = crc32.Checksum(lines, crc32.MakeTable(crc32.Castagnoli))
	}
	enc, _ := zstd.NewWriter(nil)
	data, subj := enc.EncodeAll(lines, nil), stream.Subject(cluster, 1)
	ack, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subj, Header: stream.SignedHeader(testSigner, subj, info, data), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// TestRestoreRefusesBadStream: a corrupted batch and a missing range each stop the restore
// with an error naming the message or the versions, and leave the output untouched.
func TestRestoreRefusesBadStream(t *testing.T) {
	for _, tc := range []struct {
		name    string
		publish func(t *testing.T, js jetstream.JetStream) string // returns what the error must say
		is      error
	}{
		{"corrupt batch", func(t *testing.T, js jetstream.JetStream) string {
			seq := publishRaw(t, js, 3002, 3005, 1)
			return fmt.Sprintf("stream message %d (versions 3002..3005): checksum", seq)
		}, nil},
		{"NUL byte in a line", func(t *testing.T, js jetstream.JetStream) string {
			// A writer that skipped the line check: restore checks again before mfsmaster.
			text := history(3002, 3003) + "3004: 1700000030|CREATE(1,f\x003004,1,420,18,0,0,0):3004\n" + history(3005, 3005)
			seq := publishText(t, js, 3002, 3005, text, 0)
			return fmt.Sprintf("stream message %d line 3: NUL byte at byte 27", seq)
		}, changelog.ErrSyntax},
		{"missing range", func(t *testing.T, js jetstream.JetStream) string {
			publishRaw(t, js, 3010, 3012, 0)
			return "versions 3002..3009 are missing"
		}, ErrGap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js, store, _ := shipped(t) // lines 1..3001 and a snapshot of version 1002
			want := tc.publish(t, js)
			out := t.TempDir()
			os.WriteFile(filepath.Join(out, "metadata.mfs"), []byte("precious"), 0o644)
			_, _, err := restore(t, js, store, Target{}, out, true)
			if err == nil || !strings.Contains(err.Error(), want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("got %v, want an error saying %q", err, want)
			}
			if b, _ := os.ReadFile(filepath.Join(out, "metadata.mfs")); string(b) != "precious" {
				t.Fatal("the output was changed")
			}
			ents, _ := os.ReadDir(out)
			if len(ents) != 1 {
				t.Fatalf("left behind: %v", ents)
			}
		})
	}
}
