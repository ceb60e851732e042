package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mfsha/mfsha/internal/snapshot"
)

// snapRate is one snapshot transfer measured in a child process of its own.
type snapRate struct {
	bytes   int64 // the metadata file's size
	stored  int64 // compressed, in the object store
	seconds float64
	hwm     int64 // the whole child's peak RSS, embedded JetStream server included
}

func (r snapRate) mbps() float64 { return float64(r.bytes) / (1 << 20) / r.seconds }

// snapshotRates uploads the metadata file meta to an embedded JetStream server in one child
// process, then downloads it (verified, synced) in another, on the same store: each child's
// peak memory is its own.
func snapshotRates(ctx context.Context, dir, meta string) (up, down snapRate, err error) {
	run := func(args ...string) (snapRate, error) {
		var r snapRate
		out, err := exec.CommandContext(ctx, os.Args[0], args...).CombinedOutput()
		if err != nil {
			return r, fmt.Errorf("snapshot child %v: %v\n%s", args, err, out)
		}
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "hwm=%d stored=%d seconds=%g bytes=%d", &r.hwm, &r.stored, &r.seconds, &r.bytes); err != nil {
			return r, fmt.Errorf("snapshot child %v said %q: %v", args, out, err)
		}
		return r, nil
	}
	if up, err = run("-snapshot-file", meta, "-snapshot-dir", dir); err != nil {
		return up, down, err
	}
	down, err = run("-snapshot-get", "-snapshot-dir", dir)
	return up, down, err
}

// childStore opens the embedded server of dir (made by the first child, reopened by the next)
// and its snapshot store, signing and verifying with dir's key.
func childStore(dir string) (*env, *snapshot.Store, error) {
	e, err := newEnv(dir)
	if err != nil {
		return nil, nil, err
	}
	store, err := snapshot.Open(context.Background(), e.js, "bench", 1)
	if err != nil {
		e.stop()
		return nil, nil, err
	}
	return e, store.WithSigner(e.signer).WithVerifier(e.verifier), nil
}

// printChild prints what a snapshot child measured, for snapshotRates and snapshotSection.
func printChild(snap snapshot.Snapshot, start time.Time) error {
	secs := time.Since(start).Seconds()
	hwm, err := vmHWM()
	if err != nil {
		return err
	}
	fmt.Printf("hwm=%d stored=%d seconds=%g bytes=%d\n", hwm, snap.CompressedSize, secs, snap.Size)
	return nil
}

// snapshotFileChild is the upload child: it uploads path to the embedded server of dir.
func snapshotFileChild(path, dir string) error {
	e, store, err := childStore(dir)
	if err != nil {
		return err
	}
	defer e.stop()
	ctx := context.Background()
	start := time.Now()
	snap, err := store.Upload(ctx, path, snapshot.Info{Timeline: 1, Time: time.Now().Unix()})
	if err != nil {
		return err
	}
	return printChild(snap, start)
}

// snapshotGetChild is the download child: it downloads the snapshot snapshotFileChild stored
// in dir to dir/get/metadata.mfs.
func snapshotGetChild(dir string) error {
	e, store, err := childStore(dir)
	if err != nil {
		return err
	}
	defer e.stop()
	ctx := context.Background()
	snaps, err := store.List(ctx)
	if err != nil {
		return err
	}
	if len(snaps) != 1 {
		return fmt.Errorf("%d snapshots stored in %s, want the one uploaded", len(snaps), dir)
	}
	out := filepath.Join(dir, "get")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	start := time.Now()
	snap, err := store.DownloadFile(ctx, snaps[0].Name, filepath.Join(out, "metadata.mfs"), nil)
	if err != nil {
		return err
	}
	return printChild(snap, start)
}
