package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/moosefs"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/restorer"
	"github.com/mfsha/mfsha/shipper"
)

// restoreSection: a restore of a 1M-inode snapshot plus 1,000,000 changelog lines from the
// stream, against mfsmaster -a restore of the same files already on local disk.
func restoreSection(ctx context.Context, w *strings.Builder, dir string, inodes, lines int, log *slog.Logger) error {
	fmt.Printf("restore: %d-inode snapshot + %d lines...\n", inodes, lines)
	src := filepath.Join(dir, "restore-src")
	const ts = 1764000000
	snapVersion, err := lab.MakeMetadata(ctx, benchMooseFS.Path("mfsmaster"), src, 4242, inodes, ts)
	if err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(src, "metadata.mfs"), filepath.Join(src, "metadata.mfs.back")); err != nil {
		return err
	}
	last := snapVersion + uint64(lines) - 1
	if err := writeCreates(filepath.Join(src, "changelog.0.mfs"), snapVersion, last, ts+1); err != nil {
		return err
	}

	e, err := newEnv(filepath.Join(dir, "restore-nats"))
	if err != nil {
		return err
	}
	defer e.stop()
	local, fromStream, err := restoreVsLocal(ctx, e, "restore", filepath.Join(dir, "restore"), src, snapVersion, last, true, log)
	if err != nil {
		return err
	}
	ratio := fromStream.Seconds() / local.Seconds()
	fmt.Fprintf(w, "\n## Restore (issue 4)\n\n| measure | mfsha | baseline | ratio | target |\n|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| restore of a %d-inode snapshot + %d lines | `mfsha restore` from the stream (download, verify, lines, fold, checks): %.2f s | `mfsmaster -a restore` on the same files on local disk: %.2f s | %.2fx | <= 1.3x |\n",
		inodes, lines, fromStream.Seconds(), local.Seconds(), ratio)
	fmt.Printf("  from the stream %.2f s, local mfsmaster -a restore %.2f s: %.2fx\n", fromStream.Seconds(), local.Seconds(), ratio)
	return nil
}

// writeCreates writes lab.WriteCreates's lines from..to to a new file at path.
func writeCreates(path string, from, to uint64, ts int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := lab.WriteCreates(bw, from, to, ts); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// restoreVsLocal times `mfsha restore` of src's metadata.mfs.back (version snapVersion) and
// changelog.0.mfs (up to version last) from the stream against `mfsmaster -a restore` of the
// same files on local disk, in directories under dir. With ship, it first ships src to
// cluster's stream in e (else they are there already).
func restoreVsLocal(ctx context.Context, e *env, cluster, dir, src string, snapVersion, last uint64, ship bool, log *slog.Logger) (local, fromStream time.Duration, err error) {
	// Baseline: mfsmaster -a restore of the same files on local disk.
	base := filepath.Join(dir, "local", "data")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return 0, 0, err
	}
	for _, n := range []string{"metadata.mfs.back", "changelog.0.mfs"} {
		if err := os.Link(filepath.Join(src, n), filepath.Join(base, n)); err != nil {
			return 0, 0, err
		}
	}
	cfg := filepath.Join(dir, "local", "mfsmaster.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("WORKING_USER = root\nWORKING_GROUP = root\nDATA_PATH = %s\nEXPORTS_FILENAME = %s/exports\nLOCK_FILE = %s/.lock\n", base, filepath.Dir(base), base)), 0o644); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if out, err := exec.CommandContext(ctx, benchMooseFS.Path("mfsmaster"), "-c", cfg, "-a", "restore").CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("baseline mfsmaster -a restore: %v\n%s", err, out)
	}
	local = time.Since(start)
	if h, err := metafile.Check(filepath.Join(base, "metadata.mfs")); err != nil || h.Version != last+1 {
		return 0, 0, fmt.Errorf("baseline made %+v (%v), want version %d", h, err, last+1)
	}

	store, err := snapshot.Open(ctx, e.js, cluster, 1)
	if err != nil {
		return 0, 0, err
	}
	store = store.WithSigner(e.signer)
	if ship {
		scfg := shipper.DefaultConfig()
		scfg.DataDir, scfg.Kind, scfg.Cluster, scfg.Snapshots, scfg.Retention = src, shipper.KindMaster, cluster, store, 0
		scfg.SnapshotPoll, scfg.Signer = 100*time.Millisecond, e.signer
		sh, err := shipper.New(scfg, e.js, log, nil)
		if err != nil {
			return 0, 0, err
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- sh.Run(sctx) }()
		deadline := time.Now().Add(5 * time.Minute)
		for {
			_, serr := store.Get(ctx, stream.SnapshotName(1, snapVersion))
			if sh.Shipped().Next == last+1 && serr == nil {
				break
			}
			if time.Now().After(deadline) {
				cancel()
				return 0, 0, fmt.Errorf("shipping for the restore benchmark did not finish: at %+v", sh.Shipped())
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		<-done

	}

	out := filepath.Join(dir, "out")
	start = time.Now()
	tls, err := stream.Timelines(ctx, e.js, cluster)
	if err != nil {
		return 0, 0, err
	}
	snaps, err := store.List(ctx)
	if err != nil {
		return 0, 0, err
	}
	plan, err := restorer.CalcPlan(tls, snaps, 0, restorer.Target{})
	if err != nil {
		return 0, 0, err
	}
	res, err := restorer.Apply(ctx, e.js, store, plan, restorer.Options{Cluster: cluster, OutDir: out, Verifier: e.verifier,
		Mfsmaster: moosefs.Mfsmaster{Path: benchMooseFS.Path("mfsmaster"), Version: benchMooseFS.Version}})
	if err != nil {
		return 0, 0, err
	}
	fromStream = time.Since(start)
	if res.Version != last+1 || plan.Snapshot == nil {
		return 0, 0, fmt.Errorf("restore made version %d from %+v, want %d from the snapshot", res.Version, plan.Snapshot, last+1)
	}
	return local, fromStream, nil
}
