package restorer

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
)

// TestStandbySkipsACorruptSnapshot: the newest snapshot's chunks are gone (an upload cut short
// left it so once); a fresh standby must materialize from the older snapshot and the stream,
// not fail on the newest one for ever.
func TestStandbySkipsACorruptSnapshot(t *testing.T) {
	js, store, _ := shipped(t) // lines 1..3001 and an older snapshot
	ctx := context.Background()
	out := t.TempDir()
	if _, _, err := restore(t, js, store, Target{Version: 2001}, out, false); err != nil {
		t.Fatal(err)
	}
	newer, err := store.Upload(ctx, filepath.Join(out, "metadata.mfs"), snapshot.Info{Timeline: 1, Time: time.Now().Unix()})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(ctx, stream.SnapshotBucket(cluster))
	if err != nil {
		t.Fatal(err)
	}
	info, err := obs.GetInfo(ctx, newer.Name)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "OBJ_"+stream.SnapshotBucket(cluster))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject("$O."+stream.SnapshotBucket(cluster)+".C."+info.NUID)); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultStandbyConfig()
	cfg.Cluster, cfg.Dir, cfg.Poll = cluster, t.TempDir(), 50*time.Millisecond
	cfg.Mfsmaster, cfg.Verifier = mfstest.Mfsmaster(t), testVerifier
	sb, stop := startStandby(t, cfg, js, store)
	defer stop()
	deadline := time.Now().Add(30 * time.Second)
	for sb.Materialized().Version != 3002 {
		if time.Now().After(deadline) {
			t.Fatalf("materialized %+v; want version 3002 from the older snapshot and the stream (the newest, %s, is corrupt)", sb.Materialized(), newer.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if names := files(t, filepath.Join(cfg.Dir, "metadata.mfs")); !names["f3001"] || names["f3002"] {
		t.Fatal("materialized metadata does not hold exactly f2..f3001")
	}
}
