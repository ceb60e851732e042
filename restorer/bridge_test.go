package restorer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/jstest"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/shipper"
)

// TestRestoreAcrossABridgedHole: a real mfsmaster skips a version across a clean stop; the
// shipper bridges the hole with the metadata file written then (version 30 after line 28).
// Restores before the hole use the lines, restores past it start from that snapshot, and
// without the snapshot a restore past the hole is a named gap, never a silent skip.
func TestRestoreAcrossABridgedHole(t *testing.T) {
	mfstest.RequireMooseFS(t)
	js := jstest.Start(t)
	ctx := context.Background()
	store := signedStore(t, js)
	dir := t.TempDir()
	src, version := mfstest.MakeMetadata(t, t.TempDir(), 77, 28) // f2..f29: the state after line 29
	if version != 30 {
		t.Fatalf("made version %d, want 30", version)
	}
	b, _ := os.ReadFile(src)
	os.WriteFile(filepath.Join(dir, "metadata.mfs"), b, 0o644)
	os.WriteFile(filepath.Join(dir, "changelog.0.mfs"), []byte(history(1, 28)+history(30, 40)), 0o644)
	sh, _ := startShipper(t, js, store, dir, func(c *shipper.Config) {
		c.Retention, c.SnapshotPoll = 0, 50*time.Millisecond
	})
	waitFor(t, "lines and the bridging snapshot", func() bool {
		_, err := store.Get(ctx, stream.SnapshotName(1, 30))
		return sh.Shipped().Next == 41 && err == nil
	})
	for _, tc := range []struct {
		version      uint64
		wantSnapshot bool
		first, last  int // the files f<first>..f<last> and no others
	}{
		{28, false, 2, 28},
		{29, true, 2, 29}, // the snapshot itself: the state after the skipped version
		{35, true, 2, 35},
		{40, true, 2, 40},
	} {
		out := t.TempDir()
		p, o, err := restore(t, js, store, Target{Version: tc.version}, out, false)
		if err != nil {
			t.Fatalf("version %d: %v", tc.version, err)
		}
		if (p.Snapshot != nil) != tc.wantSnapshot || o.Version != tc.version+1 {
			t.Fatalf("version %d: snapshot %v, result %d; want snapshot %v, result %d", tc.version, p.Snapshot != nil, o.Version, tc.wantSnapshot, tc.version+1)
		}
		names := files(t, filepath.Join(out, "metadata.mfs"))
		if len(names) != tc.last-tc.first+1 || !names[fmt.Sprintf("f%d", tc.first)] || !names[fmt.Sprintf("f%d", tc.last)] {
			t.Fatalf("version %d: %d names; want f%d..f%d", tc.version, len(names), tc.first, tc.last)
		}
	}
	if err := store.Delete(ctx, stream.SnapshotName(1, 30)); err != nil {
		t.Fatal(err)
	}
	_, _, err := restore(t, js, store, Target{Version: 35}, t.TempDir(), false)
	if !errors.Is(err, ErrGap) || !strings.Contains(err.Error(), "versions 29..29 are not in the changelog") {
		t.Fatalf("past the hole without its snapshot: %v; want ErrGap naming version 29", err)
	}
}

// TestRestoreChecksTheResultVersion: mfsmaster exits 0 even when it applied none of the lines
// it was given (here: a base newer than the lines, as a standby whose position was not saved
// after its metadata was). Restore trusts only the result's header: the error names both
// versions and nothing is installed.
func TestRestoreChecksTheResultVersion(t *testing.T) {
	mfstest.RequireMooseFS(t)
	base, version := mfstest.MakeMetadata(t, t.TempDir(), 77, 38) // version 40
	linesFile := filepath.Join(t.TempDir(), "pending.mfs")
	os.WriteFile(linesFile, []byte(history(30, 35)), 0o644)
	out := t.TempDir()
	p := Plan{Timeline: stream.Timeline{Timeline: 1, FirstVersion: 1, LastVersion: 35}, BaseFile: base, LinesFile: linesFile, From: 30, To: 35}
	_, err := Apply(context.Background(), nil, nil, p, Options{Cluster: cluster, OutDir: out, Mfsmaster: mfstest.Mfsmaster(t), Verifier: testVerifier})
	want := fmt.Sprintf("restored metadata has version %d, want 36", version)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v; want an error saying %q", err, want)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("installed despite the wrong version: %v", ents)
	}
}
