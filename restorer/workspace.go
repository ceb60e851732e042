package restorer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// workPrefix names the private work directories of folds. They live beside the output
// directory (in its parent, or in Options.WorkDir), never inside it: a restore into a MooseFS
// DATA_PATH leaves nothing behind there, whatever kills it.
const workPrefix = ".mfsha-work-"

// workspace is one fold's private directory, locked (flock on the directory) while in use so
// that a later run can tell a stale one, left by a SIGKILL or a power cut, from a live one.
type workspace struct {
	dir  string
	lock *os.File
}

// newWorkspace removes the stale work directories in root and makes a new, locked one
// (mode 0700).
func newWorkspace(root string, log *slog.Logger) (*workspace, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("work directory: %w", err)
	}
	removeStale(root, log)
	for {
		dir, err := os.MkdirTemp(root, workPrefix)
		if err != nil {
			return nil, fmt.Errorf("work directory: %w", err)
		}
		lock, err := lockDir(dir, true)
		if errors.Is(err, os.ErrNotExist) {
			continue // another run's removeStale took it before we locked it
		}
		if err != nil {
			return nil, fmt.Errorf("work directory %s: %w", dir, err)
		}
		return &workspace{dir: dir, lock: lock}, nil
	}
}

// Close removes the directory, then releases the lock.
func (w *workspace) Close() {
	os.RemoveAll(w.dir)
	w.lock.Close()
}

// lockDir opens dir and takes an exclusive flock on it (waiting for it when wait is set). The
// lock is released when the returned file is closed. It fails with os.ErrNotExist when dir was
// removed meanwhile: a remover holds the lock while it removes.
func lockDir(dir string, wait bool) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	// Still the directory at that name? A remover may have taken the lock first.
	a, err1 := f.Stat()
	b, err2 := os.Stat(dir)
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		f.Close()
		return nil, fmt.Errorf("%s: %w", dir, os.ErrNotExist)
	}
	return f, nil
}

// removeStale removes the work directories in root that no live process holds locked.
func removeStale(root string, log *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(root, workPrefix+"*"))
	for _, d := range dirs {
		lock, err := lockDir(d, false)
		if err != nil {
			continue // in use, or gone
		}
		err = os.RemoveAll(d)
		lock.Close()
		if log != nil {
			log.Info("removed a stale work directory left by an interrupted fold", "dir", d, "err", err)
		}
	}
}
