package restorer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/sign"
	"github.com/mfsha/mfsha/internal/signtest"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
)

// pwned is what an attacker folds in: valid changelog lines (mfsmaster would replay them)
// creating set-uid files owned by root, versions from..to.
func pwned(from, to int) string {
	var b strings.Builder
	for v := from; v <= to; v++ {
		fmt.Fprintf(&b, "%d: %d|CREATE(1,pwned%d,1,2541,0,0,0,0):%d\n", v, 1700000040, v, v)
	}
	return b.String()
}

// batch is a changelog batch on timeline 1 of the test cluster, as it goes on the wire.
type batch struct {
	info stream.BatchInfo
	data []byte
	hdr  nats.Header
}

// makeBatch builds a batch of lines first..last (text), signed by s (nil: unsigned).
func makeBatch(s *sign.Signer, text string, first, last int, epoch uint64) batch {
	lines := []byte(text)
	info := stream.BatchInfo{Timeline: 1, FirstVersion: uint64(first), LastVersion: uint64(last), Lines: last - first + 1,
		FirstTime: 1700000030, LastTime: 1700000030, Sum: crc32.Checksum(lines, crc32.MakeTable(crc32.Castagnoli)), Epoch: epoch}
	enc, _ := zstd.NewWriter(nil)
	b := batch{info: info, data: enc.EncodeAll(lines, nil)}
	if s == nil {
		b.hdr = info.Header()
	} else {
		b.hdr = stream.SignedHeader(s, stream.Subject(cluster, 1), info, b.data)
	}
	return b
}

func (b batch) publish(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	ack, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: stream.Subject(cluster, 1), Header: b.hdr, Data: b.data})
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// standbyRun is a standby started by a test, with its log and metrics.
type standbyRun struct {
	sb   *Standby
	dir  string
	m    *StandbyMetrics
	logs *lockedBuffer
	stop func()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func runStandby(t *testing.T, js jetstream.JetStream, store *snapshot.Store, v *sign.Verifier) *standbyRun {
	t.Helper()
	cfg := DefaultStandbyConfig()
	r := &standbyRun{dir: t.TempDir(), m: NewStandbyMetrics(nil), logs: &lockedBuffer{}}
	cfg.Cluster, cfg.Dir, cfg.FoldLines, cfg.Poll, cfg.Verifier = cluster, r.dir, 1, 50*time.Millisecond, v
	cfg.Mfsmaster = mfstest.Mfsmaster(t)
	sb, err := NewStandby(cfg, js, store, slog.New(slog.NewTextHandler(r.logs, nil)), r.m)
	if err != nil {
		t.Fatal(err)
	}
	r.sb = sb
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.Run(ctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

// waitVersion waits until the standby has materialized version.
func (r *standbyRun) waitVersion(t *testing.T, version uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for r.sb.Materialized().Version != version {
		if time.Now().After(deadline) {
			t.Fatalf("standby materialized %+v, want version %d:\n%s", r.sb.Materialized(), version, r.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLogged waits until the standby has logged an error containing want, and its
// materialized position is version (0: nothing materialized).
func (r *standbyRun) waitLogged(t *testing.T, want string, version uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(r.logs.String(), want) || r.sb.Materialized().Version != version {
		if time.Now().After(deadline) {
			t.Fatalf("standby materialized %+v (want version %d); its log does not say %q:\n%s", r.sb.Materialized(), version, want, r.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var m dto.Metric
	if err := r.m.Errors.Write(&m); err != nil || m.GetCounter().GetValue() < 1 {
		t.Fatalf("standby errors_total = %v (%v) after a refusal", m.GetCounter().GetValue(), err)
	}
}

// checkNothingForged checks that the standby's materialized metadata (if any) is version and
// holds no file of the attacker's, and that its local copy holds no forged line.
func (r *standbyRun) checkNothingForged(t *testing.T, version uint64) {
	t.Helper()
	meta := filepath.Join(r.dir, "metadata.mfs")
	if version == 0 {
		if _, err := os.Lstat(meta); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: %v; want nothing materialized", meta, err)
		}
	} else {
		h, err := metafile.Check(meta)
		if err != nil || h.Version != version {
			t.Fatalf("materialized %+v, %v; want version %d", h, err, version)
		}
		for name := range files(t, meta) {
			if strings.HasPrefix(name, "pwned") {
				t.Fatalf("the materialized metadata holds the forged file %s", name)
			}
		}
	}
	if b, _ := os.ReadFile(filepath.Join(r.dir, "pending.mfs")); bytes.Contains(b, []byte("pwned")) {
		t.Fatal("the standby's pending.mfs holds forged lines")
	}
}

// restoreRefused restores the newest state into a directory holding "precious" metadata and
// checks that it fails with an error wrapping is and containing want, leaving it untouched.
func restoreRefused(t *testing.T, js jetstream.JetStream, store *snapshot.Store, target Target, is error, want string) {
	t.Helper()
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "metadata.mfs"), []byte("precious"), 0o644)
	_, _, err := restore(t, js, store, target, out, true)
	if !errors.Is(err, is) || !strings.Contains(err.Error(), want) {
		t.Fatalf("restore %s: %v; want %v saying %q", target, err, is, want)
	}
	t.Logf("restore refused: %v", err)
	if b, _ := os.ReadFile(filepath.Join(out, "metadata.mfs")); string(b) != "precious" {
		t.Fatal("the output was changed")
	}
	if ents, _ := os.ReadDir(out); len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}

// TestForgedBatchesAreRefused: after a real shipper's lines 1..3001, a batch that is
// unsigned, signed with a foreign key, or signed but changed afterwards (versions and CRC
// recomputed by the attacker), or that carries an older epoch than one already read, is
// refused by restore and by the standby, naming the stream message; nothing of it reaches
// mfsmaster, while everything before it still restores.
func TestForgedBatchesAreRefused(t *testing.T) {
	foreign := signtest.New(t)
	for _, tc := range []struct {
		name  string
		forge func(t *testing.T, js jetstream.JetStream) (seq uint64, want string)
		is    error
		local uint64 // the last version the standby may copy
	}{
		{"unsigned", func(t *testing.T, js jetstream.JetStream) (uint64, string) {
			return makeBatch(nil, pwned(3002, 3005), 3002, 3005, 0).publish(t, js), "not signed"
		}, sign.ErrUnsigned, 3001},
		{"foreign key", func(t *testing.T, js jetstream.JetStream) (uint64, string) {
			return makeBatch(foreign.Signer, pwned(3002, 3005), 3002, 3005, 0).publish(t, js), foreign.Signer.KeyID()
		}, sign.ErrUntrusted, 3001},
		{"tampered after signing", func(t *testing.T, js jetstream.JetStream) (uint64, string) {
			// A good batch of two lines, signed by the cluster's key, turned into four lines
			// of the attacker's: payload, version range, line count and CRC all consistent.
			good := makeBatch(testSigner, history(3002, 3003), 3002, 3003, 0)
			bad := makeBatch(nil, pwned(3002, 3005), 3002, 3005, 0)
			bad.hdr.Set(stream.HdrSig, good.hdr.Get(stream.HdrSig))
			bad.hdr.Set(stream.HdrKeyID, good.hdr.Get(stream.HdrKeyID))
			return bad.publish(t, js), "signature does not match"
		}, sign.ErrBadSignature, 3001},
		{"old epoch", func(t *testing.T, js jetstream.JetStream) (uint64, string) {
			makeBatch(testSigner, history(3002, 3003), 3002, 3003, 5).publish(t, js)
			seq := makeBatch(testSigner, pwned(3004, 3005), 3004, 3005, 4).publish(t, js)
			return seq, "epoch 4 is older than epoch 5"
		}, ErrStaleEpoch, 3003},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js, store, _ := shipped(t) // lines 1..3001 and a snapshot of version 1002
			running := runStandby(t, js, store, testVerifier)
			running.waitVersion(t, 3002)
			seq, want := tc.forge(t, js)
			msg := fmt.Sprintf("stream message %d (%s", seq, stream.Subject(cluster, 1))
			restoreRefused(t, js, store, Target{}, tc.is, msg)
			restoreRefused(t, js, store, Target{}, tc.is, want)
			// Before the forged batch, the history restores.
			out := t.TempDir()
			if _, o, err := restore(t, js, store, Target{Version: tc.local}, out, false); err != nil || o.Version != tc.local+1 {
				t.Fatalf("restore to %d, before the forged batch: %+v, %v", tc.local, o, err)
			}

			// A standby that was following: it keeps everything before the forged batch.
			running.waitLogged(t, msg, tc.local+1)
			if !strings.Contains(running.logs.String(), want) {
				t.Fatalf("standby log does not say %q:\n%s", want, running.logs.String())
			}
			if got := running.sb.Local(); got != tc.local {
				t.Fatalf("standby copied up to %d, want %d: nothing of the forged batch", got, tc.local)
			}
			running.stop()
			running.checkNothingForged(t, tc.local+1)

			// A standby starting now: its first fold would take the forged batch in, so it
			// materializes nothing and says why, every round.
			fresh := runStandby(t, js, store, testVerifier)
			fresh.waitLogged(t, msg, 0)
			fresh.stop()
			fresh.checkNothingForged(t, 0)
		})
	}
}

// TestForgedSnapshotsAreRefused: a snapshot uploaded with a foreign key, without signature,
// or whose signed metadata was changed, is refused by restore and the standby, naming the
// object; nothing is folded onto it.
func TestForgedSnapshotsAreRefused(t *testing.T) {
	foreign := signtest.New(t)
	for _, tc := range []struct {
		name   string
		forge  func(t *testing.T, js jetstream.JetStream, store *snapshot.Store) string // the object's name
		target Target
		is     error
	}{
		{"foreign key", func(t *testing.T, js jetstream.JetStream, store *snapshot.Store) string {
			path, _ := mfstest.MakeMetadata(t, t.TempDir(), 77, 2000) // version 2002
			snap, err := store.WithSigner(foreign.Signer).Upload(context.Background(), path, snapshot.Info{Timeline: 1, Time: 1700000020})
			if err != nil {
				t.Fatal(err)
			}
			return snap.Name
		}, Target{}, sign.ErrUntrusted},
		{"unsigned", func(t *testing.T, js jetstream.JetStream, store *snapshot.Store) string {
			path, _ := mfstest.MakeMetadata(t, t.TempDir(), 77, 2000)
			snap, err := store.WithSigner(foreign.Signer).Upload(context.Background(), path, snapshot.Info{Timeline: 1, Time: 1700000020})
			if err != nil {
				t.Fatal(err)
			}
			updateMeta(t, js, snap.Name, func(md map[string]string) {
				delete(md, stream.SnapSig)
				delete(md, stream.SnapKeyID)
			})
			return snap.Name
		}, Target{}, sign.ErrUnsigned},
		{"time changed after signing", func(t *testing.T, js jetstream.JetStream, store *snapshot.Store) string {
			name := stream.SnapshotName(1, 1002) // the shipper's own
			updateMeta(t, js, name, func(md map[string]string) { md[stream.SnapTime] = "1700000001" })
			return name
		}, Target{Version: 1500}, sign.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js, store, _ := shipped(t)
			name := tc.forge(t, js, store)
			restoreRefused(t, js, store, tc.target, tc.is, "snapshot object "+stream.SnapshotBucket(cluster)+"/"+name)
			if tc.target != (Target{}) {
				return // the standby starts from the newest snapshot, not this one
			}
			r := runStandby(t, js, store, testVerifier)
			r.waitLogged(t, name, 0)
			r.stop()
			r.checkNothingForged(t, 0)
		})
	}
}

// updateMeta changes a stored object's metadata as any object store client can.
func updateMeta(t *testing.T, js jetstream.JetStream, name string, change func(map[string]string)) {
	t.Helper()
	ctx := context.Background()
	obs, err := js.ObjectStore(ctx, stream.SnapshotBucket(cluster))
	if err != nil {
		t.Fatal(err)
	}
	oi, err := obs.GetInfo(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	md := oi.Metadata
	change(md)
	if err := obs.UpdateMeta(ctx, name, jetstream.ObjectMeta{Name: name, Description: oi.Description, Metadata: md}); err != nil {
		t.Fatal(err)
	}
}

// TestKeyRotation: during a rotation readers trust the old and the new key; batches signed by
// either are folded. A reader that trusts only the old key refuses the new key's batches.
func TestKeyRotation(t *testing.T) {
	js, store, _ := shipped(t) // signed by testSigner
	next := signtest.New(t)
	makeBatch(next.Signer, history(3002, 3005), 3002, 3005, 0).publish(t, js)
	both, err := sign.NewVerifier(testSigner.Public(), next.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tls, _ := stream.Timelines(ctx, js, cluster)
	snaps, _ := store.List(ctx)
	p, err := CalcPlan(tls, snaps, 0, Target{})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	o, err := Apply(ctx, js, store, p, Options{Cluster: cluster, OutDir: out, Verifier: both, Mfsmaster: mfstest.Mfsmaster(t)})
	if err != nil || o.Version != 3006 {
		t.Fatalf("restore trusting both keys: %+v, %v; want version 3006", o, err)
	}
	if names := files(t, filepath.Join(out, "metadata.mfs")); !names["f3005"] || !names["f2"] {
		t.Fatal("restored metadata lacks the lines of one of the keys")
	}
	restoreRefused(t, js, store, Target{}, sign.ErrUntrusted, next.Signer.KeyID())

	runStandby(t, js, store, both).waitVersion(t, 3006)
}

// TestPromotionRefusesForgedBatch: a forged batch that arrives while the standby stands by
// never reaches the master a promotion starts: Finish does not copy it, and when the stream
// says it must reach the forged batch's version it fails instead (ErrBehind), naming the
// message.
func TestPromotionRefusesForgedBatch(t *testing.T) {
	js, store, _ := shipped(t)
	r := runStandby(t, js, store, testVerifier)
	r.waitVersion(t, 3002)
	r.stop()
	seq := makeBatch(signtest.New(t).Signer, pwned(3002, 3005), 3002, 3005, 0).publish(t, js)
	ctx := context.Background()
	_, _, err := r.sb.Finish(ctx, 3005, time.Second)
	if !errors.Is(err, ErrBehind) || !strings.Contains(err.Error(), "stream message "+strconv.FormatUint(seq, 10)) {
		t.Fatalf("Finish up to the forged version: %v; want ErrBehind naming stream message %d", err, seq)
	}
	pos, local, err := r.sb.Finish(ctx, 0, 0)
	if err != nil || local != 3001 || pos.Version != 3002 {
		t.Fatalf("Finish: %+v, local %d, %v; want 3002 materialized, nothing more", pos, local, err)
	}
	master := t.TempDir()
	if err := r.sb.HandOver(master); err != nil {
		t.Fatal(err)
	}
	h, err := metafile.Check(filepath.Join(master, "metadata.mfs"))
	if err != nil || h.Version != 3002 {
		t.Fatalf("handed over %+v, %v; want version 3002", h, err)
	}
	if b, err := os.ReadFile(filepath.Join(master, "changelog.1.mfs")); err == nil && bytes.Contains(b, []byte("pwned")) {
		t.Fatal("the lines handed to the master hold forged ones")
	}
	for name := range files(t, filepath.Join(master, "metadata.mfs")) {
		if strings.HasPrefix(name, "pwned") {
			t.Fatalf("handed-over metadata holds %s", name)
		}
	}
}
