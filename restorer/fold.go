package restorer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/mfsha/mfsha/internal/durable"
)

// FoldUser is who runs mfsmaster for a fold (restore, standby, promotion) when mfsha runs as
// root: mfsmaster drops to WORKING_USER by itself, and folds only read the base and the lines
// and write the result, so they need no privilege. Name of a user; uid 0 is refused.
type FoldUser struct {
	Name     string
	UID, GID int
}

// DefaultFoldUser is "mfs" when that user exists (Debian's moosefs packages create it), else
// "nobody".
func DefaultFoldUser() string {
	if _, err := user.Lookup("mfs"); err == nil {
		return "mfs"
	}
	return "nobody"
}

// LookupFoldUser resolves name ("" : DefaultFoldUser). Not running as root, the fold runs as
// the current user whatever name says: mfsmaster changes user only when started as root.
// Errors name FOLD_USER.
func LookupFoldUser(name string) (FoldUser, error) {
	if os.Geteuid() != 0 {
		return FoldUser{Name: strconv.Itoa(os.Geteuid()), UID: os.Geteuid(), GID: os.Getegid()}, nil
	}
	if name == "" {
		name = DefaultFoldUser()
	}
	u, err := user.Lookup(name)
	if err != nil {
		return FoldUser{}, fmt.Errorf("FOLD_USER %q: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return FoldUser{}, fmt.Errorf("FOLD_USER %q: uid %q, gid %q are not numbers", name, u.Uid, u.Gid)
	}
	if uid == 0 {
		return FoldUser{}, fmt.Errorf("FOLD_USER %q: is root; folds run unprivileged (default %q)", name, DefaultFoldUser())
	}
	return FoldUser{Name: name, UID: uid, GID: gid}, nil
}

// prepareData makes the fold's data directory: private (0700) and owned by the fold user, who
// is the only one to write in it.
func prepareData(data string, u FoldUser) error {
	if err := os.Mkdir(data, 0o700); err != nil {
		return fmt.Errorf("fold directory: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(data, u.UID, u.GID); err != nil {
			return fmt.Errorf("fold directory: %w", err)
		}
	}
	return nil
}

// giveBase makes the base metadata file in data readable by the fold user. A file made for
// this fold is handed to it; a link to another file (a standby's last result) is replaced by a
// copy when that file is not readable by the fold user, so that its owner never changes.
func giveBase(path string, linked bool, u FoldUser) error {
	if os.Geteuid() != 0 {
		return nil
	}
	if !linked {
		return os.Chown(path, u.UID, u.GID)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	m := fi.Mode().Perm()
	if m&0o004 != 0 || (int(st.Gid) == u.GID && m&0o040 != 0) || (int(st.Uid) == u.UID && m&0o400 != 0) {
		return nil
	}
	tmp := path + ".copy"
	if err := linkOrCopyMode(path, tmp, false); err != nil {
		return err
	}
	if err := os.Chown(tmp, u.UID, u.GID); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// fold runs `mfsmaster -a restore` on data with a private configuration; it serves nothing.
// mfsmaster changes to the fold user before it enters DATA_PATH, so DATA_PATH is "." and the
// process starts in data: the directories above it (root's, 0700) need not be open to that
// user. The base and the lines in data are readable by it (0644, or a link to the last result,
// whose group is the fold user's).
// It runs at CPU nice level nice (startNiced; 0: mfsha's own).
func fold(ctx context.Context, master, work, data string, u FoldUser, nice int) (FoldRun, error) {
	if err := checkFoldMemory(filepath.Join(data, "metadata.mfs")); err != nil {
		return FoldRun{}, err
	}
	cfg := filepath.Join(work, "mfsmaster.cfg")
	exports := filepath.Join(work, "mfsexports.cfg")
	text := fmt.Sprintf("WORKING_USER = %s\nWORKING_GROUP = #%d\nDATA_PATH = .\nEXPORTS_FILENAME = %s\nLOCK_FILE = .mfsmaster.lock\n",
		u.Name, u.GID, exports)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return FoldRun{}, err
	}
	if err := os.WriteFile(exports, []byte("* / ro\n"), 0o600); err != nil {
		return FoldRun{}, err
	}
	cmd := exec.CommandContext(ctx, master, "-c", cfg, "-a", "restore")
	cmd.Dir = data
	start := time.Now()
	clock := &phaseClock{}
	cmd.Stdout, cmd.Stderr = clock, clock
	err := startNiced(cmd, nice)
	if err == nil {
		err = cmd.Wait()
	}
	run := foldRunOf(cmd, time.Since(start))
	run.Replay = clock.replay()
	outp := clock.output()
	_ = os.WriteFile(filepath.Join(work, "mfsmaster.log"), outp, 0o600)
	if err != nil {
		return run, fmt.Errorf("mfsmaster -a restore: %w\n%s", err, tailOf(outp))
	}
	return run, nil
}

func tailOf(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// install puts the restored file src at out: into a new temporary file beside out (renamed,
// or copied when src is on another file system), synced, renamed over out, and the directory
// synced. Running as root, the file gets out's directory's owner and the fold user's group,
// mode 0640: the next fold (a link to it) and the directory's owner (mfsmaster's user for a
// DATA_PATH) can read it, nobody else.
func install(src, out string, u FoldUser) error {
	dir := filepath.Dir(out)
	t, err := os.CreateTemp(dir, ".metadata.mfs.mfsha-*")
	if err != nil {
		return fmt.Errorf("install %s: %w", out, err)
	}
	tmp := t.Name()
	t.Close()
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	if err := os.Rename(src, tmp); errors.Is(err, syscall.EXDEV) {
		err = copyFile(src, tmp)
		if err != nil {
			return fmt.Errorf("install %s: %w", out, err)
		}
	} else if err != nil {
		return fmt.Errorf("install %s: %w", out, err)
	}
	if os.Geteuid() == 0 {
		owner := 0
		if fi, err := os.Stat(dir); err == nil {
			owner = int(fi.Sys().(*syscall.Stat_t).Uid)
		}
		if err := os.Chown(tmp, owner, u.GID); err != nil {
			return fmt.Errorf("install %s: %w", out, err)
		}
	}
	if err := os.Chmod(tmp, 0o640); err != nil {
		return fmt.Errorf("install %s: %w", out, err)
	}
	f, err := os.Open(tmp)
	if err != nil {
		return fmt.Errorf("install %s: %w", out, err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return fmt.Errorf("install %s: sync: %w", out, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("install %s: %w", out, err)
	}
	done = true
	return durable.SyncDir(dir)
}

// copyFile copies src over dst (which exists).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// linkOrCopy puts src at dst without copying when they share a file system: mfsmaster writes a
// new file and never changes the one it read.
func linkOrCopy(src, dst string) error { return linkOrCopyMode(src, dst, true) }

func linkOrCopyMode(src, dst string, link bool) error {
	if link && os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("restore base: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("restore base: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("restore base: copy %s: %w", src, err)
	}
	return out.Close()
}
