package restorer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/mfstest"
)

// TestStandbyDiskFullRecovers: found by trying it, a full disk in the standby's directory left
// pending.mfs with a line cut and glued to a later one (34702 glued to 60001), and every fold
// failed after that, also after a restart. Here the standby's directory is a real, small
// tmpfs: filled while lines arrive, pending.mfs must hold only whole, contiguous lines after
// every failed round and across a restart, and once space returns the standby catches up by
// itself, to exactly what the stream holds.
func TestStandbyDiskFullRecovers(t *testing.T) {
	js, store, master := shipped(t) // lines 1..3001 and a snapshot of version 1002
	mnt := smallFS(t, 4<<20)
	sdir := filepath.Join(mnt, "standby")
	cfg := DefaultStandbyConfig()
	cfg.Cluster, cfg.Dir, cfg.FoldLines, cfg.FoldEvery, cfg.Poll = cluster, sdir, 1000, time.Second, 50*time.Millisecond
	cfg.Mfsmaster = mfstest.Mfsmaster(t)
	cfg.Verifier = testVerifier
	run := func() (*Standby, *StandbyMetrics, func()) {
		m := NewStandbyMetrics(nil)
		sb, err := NewStandby(cfg, js, store, slog.New(slog.NewTextHandler(io.Discard, nil)), m)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sb.Run(ctx) }()
		return sb, m, func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	sb, m, stop := run()
	waitFor(t, "the first materialization", func() bool { return sb.Materialized().Version == 3002 })

	// Fill the file system, then free about 8 kB: the next appends stop part-way, in a line.
	filler := filepath.Join(mnt, "filler")
	fillUp(t, filler)
	fi, _ := os.Stat(filler)
	if err := os.Truncate(filler, fi.Size()-10000); err != nil {
		t.Fatal(err)
	}
	appendTo(t, filepath.Join(master, "changelog.0.mfs"), history(3002, 9000))
	errs := testutil.ToFloat64(m.Errors)
	for round := 0; round < 3; round++ {
		waitFor(t, "a failed round on the full disk", func() bool { return testutil.ToFloat64(m.Errors) > errs })
		errs = testutil.ToFloat64(m.Errors)
		checkPending(t, filepath.Join(sdir, "pending.mfs"))
	}
	stop()
	checkPending(t, filepath.Join(sdir, "pending.mfs"))

	// A restart on the still full disk, then space returns.
	sb, m, stop = run()
	defer stop()
	waitFor(t, "a failed round after the restart", func() bool { return testutil.ToFloat64(m.Errors) > 0 })
	checkPending(t, filepath.Join(sdir, "pending.mfs"))
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the standby to catch up once space returned", func() bool { return sb.Materialized().Version == 9001 })
	h, err := metafile.Check(filepath.Join(sdir, "metadata.mfs"))
	if err != nil || h.Version != 9001 {
		t.Fatalf("materialized metadata: %+v, %v; want version 9001, the stream's last line + 1", h, err)
	}
	names := files(t, filepath.Join(sdir, "metadata.mfs"))
	for _, v := range []int{2, 3001, 3002, 6000, 9000} {
		if !names[fmt.Sprintf("f%d", v)] {
			t.Fatalf("materialized metadata lacks f%d", v)
		}
	}
	if len(names) != 8999 {
		t.Fatalf("materialized metadata has %d names, want f2..f9000 (8999)", len(names))
	}
}

// checkPending fails unless path holds whole, parseable lines of contiguous versions.
func checkPending(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s ends in a cut line: %q", path, b[max(0, len(b)-80):])
	}
	sc := changelog.NewScanner(bytes.NewReader(b), path)
	var prev uint64
	for sc.Scan() {
		v := sc.Line().Version
		if prev != 0 && v != prev+1 {
			t.Fatalf("%s line %d: version %d after %d", path, sc.LineNumber(), v, prev)
		}
		prev = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// smallFS mounts a tmpfs of size bytes on a new directory and unmounts it when the test ends.
func smallFS(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it mounts a small tmpfs to fill it")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillUp writes path until the file system is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStandbyCutsAGluedLineAtStart: a pending.mfs damaged as the full disk used to leave it,
// a line cut and glued to a later one, is cut before that line when the standby starts (every
// line is checked whole), and the standby catches up from the stream by itself.
func TestStandbyCutsAGluedLineAtStart(t *testing.T) {
	js, store, master := shipped(t) // lines 1..3001 and a snapshot of version 1002
	sdir := t.TempDir()
	cfg := DefaultStandbyConfig()
	cfg.Cluster, cfg.Dir, cfg.FoldLines, cfg.FoldEvery, cfg.Poll = cluster, sdir, 1000, time.Second, 50*time.Millisecond
	cfg.Mfsmaster = mfstest.Mfsmaster(t)
	cfg.Verifier = testVerifier
	sb, err := NewStandby(cfg, js, store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.Run(ctx) }()
	waitFor(t, "the first materialization", func() bool { return sb.Materialized().Version == 3002 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	pending := filepath.Join(sdir, "pending.mfs")
	cut := history(3011, 3011)
	damaged := history(3002, 3010) + cut[:len(cut)/2] + history(3500, 3501)
	if err := os.WriteFile(pending, []byte(damaged), 0o644); err != nil {
		t.Fatal(err)
	}
	appendTo(t, filepath.Join(master, "changelog.0.mfs"), history(3002, 4000))

	sb, err = NewStandby(cfg, js, store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- sb.Run(ctx) }()
	waitFor(t, "the standby to catch up past the glued line", func() bool { return sb.Materialized().Version == 4001 })
	names := files(t, filepath.Join(sdir, "metadata.mfs"))
	if len(names) != 3999 || !names["f3011"] || !names["f3500"] || !names["f4000"] {
		t.Fatalf("materialized metadata has %d names; want f2..f4000", len(names))
	}
	checkPending(t, pending)
}
