package restorer

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/snapshot"
)

func TestStandbyMaterializesAndFollows(t *testing.T) {
	js, store, dir := shipped(t) // lines 1..3001 and a snapshot of version 1002
	sdir := t.TempDir()
	cfg := DefaultStandbyConfig()
	cfg.Cluster, cfg.Dir, cfg.FoldLines, cfg.FoldEvery, cfg.Poll = cluster, sdir, 500, 2*time.Second, 50*time.Millisecond
	cfg.Mfsmaster = mfstest.Mfsmaster(t)
	cfg.Verifier = testVerifier
	if fresh, err := NewStandby(cfg, js, store, slog.New(slog.DiscardHandler), nil); err != nil {
		t.Fatal(err)
	} else if _, ok, why := fresh.Lag(); ok || why != "nothing is materialized yet" {
		t.Fatalf("Lag before anything is materialized: ok %v (%s); want not ok", ok, why)
	}
	run := func() (*Standby, func()) { return startStandby(t, cfg, js, store) }
	waitVersion := func(sb *Standby, v uint64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for sb.Materialized().Version != v {
			if time.Now().After(deadline) {
				t.Fatalf("materialized %+v, want version %d", sb.Materialized(), v)
			}
			time.Sleep(20 * time.Millisecond)
		}
		h, err := metafile.Check(filepath.Join(sdir, "metadata.mfs"))
		if err != nil || h.Version != v {
			t.Fatalf("DIR/metadata.mfs: %+v, %v; want version %d", h, err, v)
		}
	}
	sb, stop := run()
	waitVersion(sb, 3002) // the snapshot and every line after it
	if lines, ok, why := sb.Lag(); !ok || lines != 0 {
		t.Fatalf("Lag with every shipped line folded: %d, %v (%s); want 0", lines, ok, why)
	}

	// Folding from the materialized file must not change it: mfsmaster writes a new file.
	before := fileSum(t, filepath.Join(sdir, "metadata.mfs"))
	link := filepath.Join(t.TempDir(), "base")
	if err := os.Link(filepath.Join(sdir, "metadata.mfs"), link); err != nil {
		t.Fatal(err)
	}
	appendTo(t, filepath.Join(dir, "changelog.0.mfs"), history(3002, 4000))
	waitVersion(sb, 4001)
	if fileSum(t, link) != before {
		t.Fatal("the fold changed its base file in place")
	}
	names := files(t, filepath.Join(sdir, "metadata.mfs"))
	if !names["f4000"] || names["f4001"] {
		t.Fatal("materialized metadata does not hold exactly f2..f4000")
	}
	stop()

	// A restart resumes from the persisted position, not from a snapshot. This time a local
	// metalogger has lines the stream does not have yet (4101..4200).
	appendTo(t, filepath.Join(dir, "changelog.0.mfs"), history(4001, 4100))
	ml := t.TempDir()
	if err := os.WriteFile(filepath.Join(ml, "changelog_ml.0.mfs"), []byte(history(3900, 4200)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.MetaloggerDir = ml
	sb, stop = run()
	defer stop()
	if got := sb.Materialized(); got.Version != 4001 || got.Timeline != 1 {
		t.Fatalf("after restart: %+v, want the persisted version 4001", got)
	}
	deadline := time.Now().Add(20 * time.Second)
	for sb.Local() != 4200 { // the stream's lines, then the metalogger's, copied at once
		if time.Now().After(deadline) {
			t.Fatalf("local copy at %d, want 4200 (4100 from the stream, the rest from the metalogger)", sb.Local())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitVersion(sb, 4201) // 200 lines, fewer than FoldLines: folded once FoldEvery passes
	// Ahead of the stream (the metalogger's lines) is no lag: /standby answers 200.
	if lines, ok, why := sb.Lag(); !ok || lines != 0 || !strings.Contains(why, "holds the stream's last line") {
		t.Fatalf("Lag ahead of the stream: %d, %v (%s); want 0", lines, ok, why)
	}
	names = files(t, filepath.Join(sdir, "metadata.mfs"))
	if !names["f4200"] || names["f4201"] {
		t.Fatal("materialized metadata does not hold exactly f2..f4200")
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// startStandby starts a standby of cfg; the returned function stops it and fails the test if
// Run returned an error.
func startStandby(t *testing.T, cfg StandbyConfig, js jetstream.JetStream, store *snapshot.Store) (*Standby, func()) {
	t.Helper()
	sb, err := NewStandby(cfg, js, store, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.Run(ctx) }()
	return sb, func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
