package restorer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/stream"
)

// TestRestoreOutputSafety: found by trying it, a dangling metadata.mfs symlink was replaced
// without --force (Stat, not Lstat), the temporary name was fixed, and the work directory was
// made inside --out, where a SIGKILL left it (with a whole snapshot in it). Now a symlink,
// dangling or not, counts as an existing file; the work directory is beside --out; one left by
// a killed run is removed by the next, one in use by a live run is not.
func TestRestoreOutputSafety(t *testing.T) {
	js, store, _ := shipped(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	os.Mkdir(out, 0o755)
	link := filepath.Join(out, "metadata.mfs")
	target := filepath.Join(parent, "nowhere", "metadata.mfs")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, _, err := restore(t, js, store, Target{Version: 100}, out, false); !errors.Is(err, ErrExists) {
		t.Fatalf("dangling symlink without --force: %v, want ErrExists", err)
	}
	if dest, err := os.Readlink(link); err != nil || dest != target {
		t.Fatalf("the symlink was changed: %q, %v", dest, err)
	}

	// A killed run's work directory, with a fake snapshot in it, and a live run's.
	stale := filepath.Join(parent, workPrefix+"killed")
	os.MkdirAll(filepath.Join(stale, "data"), 0o700)
	os.WriteFile(filepath.Join(stale, "data", "metadata.mfs"), []byte("big"), 0o600)
	live, err := newWorkspace(parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	if _, o, err := restore(t, js, store, Target{Version: 100}, out, true); err != nil || o.Version != 101 {
		t.Fatalf("--force over the symlink: %+v, %v", o, err)
	}
	if fi, err := os.Lstat(link); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("%s is not a regular file after --force: %v, %v", link, fi, err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the symlink's target was written: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the killed run's work directory is still there: %v", err)
	}
	if _, err := os.Stat(live.dir); err != nil {
		t.Fatalf("the live run's work directory was removed: %v", err)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 1 {
		t.Fatalf("left behind in %s: %v", out, ents)
	}
	ents, _ = os.ReadDir(parent)
	for _, e := range ents {
		if e.Name() != "out" && e.Name() != filepath.Base(live.dir) {
			t.Fatalf("left behind in %s: %s", parent, e.Name())
		}
	}
}

// TestFoldRunsUnprivileged: mfsmaster folds as FOLD_USER (not root), in a private directory
// owned by that user; the file it writes is that user's, and the installed result is readable
// by the next fold through a link.
func TestFoldRunsUnprivileged(t *testing.T) {
	mfstest.RequireMooseFS(t)
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it checks that a fold started by root runs as another user")
	}
	u, err := LookupFoldUser("")
	if err != nil {
		t.Fatal(err)
	}
	if u.UID == 0 || u.Name != DefaultFoldUser() {
		t.Fatalf("fold user %+v; want %s, not root", u, DefaultFoldUser())
	}
	if _, err := LookupFoldUser("root"); err == nil || !strings.Contains(err.Error(), "FOLD_USER") {
		t.Fatalf("FOLD_USER root: %v; want refused, naming FOLD_USER", err)
	}
	ws, err := newWorkspace(t.TempDir(), nil) // under a 0700 directory of root's
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	data := filepath.Join(ws.dir, "data")
	if err := prepareData(data, u); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(data, "metadata.mfs"), []byte("MFSM NEW"), 0o600)
	os.WriteFile(filepath.Join(data, "changelog.0.mfs"), []byte(history(1, 50)), 0o600)
	for _, n := range []string{"metadata.mfs", "changelog.0.mfs"} {
		if err := os.Chown(filepath.Join(data, n), u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
	run, err := fold(context.Background(), mfstest.Mfsmaster(t).Path, ws.dir, data, u, 0)
	if err != nil {
		t.Fatal(err)
	}
	if run.MaxRSS <= 0 || run.Took <= 0 {
		t.Fatalf("fold cost %+v: want mfsmaster's peak RSS and duration", run)
	}
	for _, p := range []string{data, filepath.Join(data, "metadata.mfs")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != u.UID || st.Uid == 0 {
			t.Fatalf("%s is owned by uid %d; want the fold user %s (%d), written by an unprivileged mfsmaster", p, st.Uid, u.Name, u.UID)
		}
	}
	if fi, _ := os.Stat(data); fi.Mode().Perm() != 0o700 {
		t.Fatalf("fold directory mode %v, want 0700", fi.Mode().Perm())
	}
	out := filepath.Join(t.TempDir(), "metadata.mfs")
	if err := install(filepath.Join(data, "metadata.mfs"), out, u); err != nil {
		t.Fatal(err)
	}
	// The next fold reads the result through a link, as the fold user.
	next := filepath.Join(t.TempDir(), "base")
	if err := linkOrCopy(out, next); err != nil {
		t.Fatal(err)
	}
	if err := giveBase(next, true, u); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(next)
	st := fi.Sys().(*syscall.Stat_t)
	if !(fi.Mode().Perm()&0o004 != 0 || (int(st.Gid) == u.GID && fi.Mode().Perm()&0o040 != 0)) {
		t.Fatalf("the installed result (mode %v, gid %d) is not readable by the fold user's group %d", fi.Mode().Perm(), st.Gid, u.GID)
	}
}

// TestHandOverGivesTheFilesToTheMaster: the metadata a promotion moves into DATA_PATH belongs
// to DATA_PATH's owner, whom mfsmaster runs as, whoever folded it.
func TestHandOverGivesTheFilesToTheMaster(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it checks the owner of the files handed over")
	}
	u, err := LookupFoldUser("nobody")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultStandbyConfig()
	cfg.Cluster, cfg.Dir, cfg.Verifier = cluster, t.TempDir(), testVerifier
	sb, err := NewStandby(cfg, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cfg.Dir, "metadata.mfs"), []byte("MFSM NEW"), 0o640)
	os.WriteFile(filepath.Join(cfg.Dir, "pending.mfs"), []byte(history(1, 3)), 0o644)
	data := t.TempDir()
	if err := os.Chown(data, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	if err := sb.HandOver(data); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"metadata.mfs", "changelog.1.mfs"} {
		fi, err := os.Stat(filepath.Join(data, n))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != u.UID || int(st.Gid) != u.GID {
			t.Fatalf("%s handed over as %d:%d, want DATA_PATH's owner %d:%d", n, st.Uid, st.Gid, u.UID, u.GID)
		}
	}
}

// TestRestoreWorkOnAnotherFileSystem: with the work directory on another file system (a
// tmpfs here) the result is copied into --out, synced and renamed; nothing stays behind.
func TestRestoreWorkOnAnotherFileSystem(t *testing.T) {
	js, store, _ := shipped(t)
	work := smallFS(t, 64<<20)
	out := t.TempDir()
	ctx := context.Background()
	tls, _ := stream.Timelines(ctx, js, cluster)
	snaps, _ := store.List(ctx)
	p, err := CalcPlan(tls, snaps, 0, Target{Version: 2500})
	if err != nil {
		t.Fatal(err)
	}
	o, err := Apply(ctx, js, store, p, Options{Cluster: cluster, OutDir: out, WorkDir: work, Mfsmaster: mfstest.Mfsmaster(t), Verifier: testVerifier})
	if err != nil || o.Version != 2501 {
		t.Fatalf("restore with the work directory on another file system: %+v, %v", o, err)
	}
	if names := files(t, filepath.Join(out, "metadata.mfs")); len(names) != 2499 {
		t.Fatalf("restored %d names, want f2..f2500", len(names))
	}
	for _, d := range []string{work, out} {
		ents, _ := os.ReadDir(d)
		if (d == work && len(ents) != 0) || (d == out && len(ents) != 1) {
			t.Fatalf("left behind in %s: %v", d, ents)
		}
	}
}
