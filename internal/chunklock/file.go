package chunklock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mfsha/mfsha/internal/changelog"
	"github.com/mfsha/mfsha/internal/durable"
)

// ScanFile adds every line of the changelog file at path to t, in order. The file must end
// with a whole line: a partial last line is an error (a master would skip the whole file).
func (t *Tracker) ScanFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("chunk locks: %w", err)
	}
	defer f.Close()
	s := changelog.NewScanner(f, filepath.Base(path))
	for s.Scan() {
		if err := t.AddLine(s.Line()); err != nil {
			return fmt.Errorf("chunk locks: %s line %d: %w", path, s.LineNumber(), err)
		}
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("chunk locks: %w", err)
	}
	return nil
}

// ReleaseFile is ScanFile then Release: it releases the locks still held at now by the
// changelog file at path (the lines a promoted master is about to load). t must already hold
// the lines before the file's first one that may have locked a chunk (the LockTimeout before
// it), or be empty if the file starts early enough.
func (t *Tracker) ReleaseFile(path string, now time.Time) ([]Lock, error) {
	if err := t.ScanFile(path); err != nil {
		return nil, err
	}
	return t.Release(path, now)
}

// Release appends an UNLOCK line per lock still held at now after the last line of the
// changelog file at path, which must be the last line t has read (ErrChanged otherwise):
// it writes a new file and renames it over path (fsync of the file and of its directory).
// It returns the locks released; none leaves the file untouched.
func (t *Tracker) Release(path string, now time.Time) ([]Lock, error) {
	locks := t.Held(now)
	if len(locks) == 0 {
		return nil, nil
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chunk locks: %w", err)
	}
	if last := lastVersion(old); last != t.last {
		return nil, fmt.Errorf("chunk locks: %s ends with version %d, not %d as read: %w", path, last, t.last, ErrChanged)
	}
	b := AppendUnlocks(old, locks, t.last+1, now)
	if err := writeAtomic(path, b); err != nil {
		return nil, fmt.Errorf("chunk locks: release %d in %s: %w", len(locks), path, err)
	}
	t.last += uint64(len(locks))
	for _, l := range locks {
		delete(t.held, l.Chunk)
	}
	return locks, nil
}

// ReleaseAt is Release for locks that go after lines t did not read (t read none, or only
// lines up to next-1): it appends an UNLOCK line per lock still held at now, with versions from
// next on, to the changelog file at path, whose last line must be next-1 (ErrChanged
// otherwise). An empty file takes them as its first lines; a missing one is created (mode
// 0644). Atomic as Release. It returns the locks released; none leaves the file untouched.
//
// Why: a master restarted on its own files loads metadata whose locks t was seeded with, and
// the lines after it may all sit in older files than the newest, or there may be none.
func (t *Tracker) ReleaseAt(path string, next uint64, now time.Time) ([]Lock, error) {
	if t.last != 0 && t.last+1 != next {
		return nil, fmt.Errorf("chunk locks: UNLOCK lines from version %d after line %d read", next, t.last)
	}
	locks := t.Held(now)
	if len(locks) == 0 {
		return nil, nil
	}
	old, err := os.ReadFile(path)
	missing := errors.Is(err, os.ErrNotExist)
	if err != nil && !missing {
		return nil, fmt.Errorf("chunk locks: %w", err)
	}
	if last := lastVersion(old); len(old) > 0 && last+1 != next {
		return nil, fmt.Errorf("chunk locks: %s ends with version %d, not %d: %w", path, last, next-1, ErrChanged)
	}
	b := AppendUnlocks(old, locks, next, now)
	if missing {
		err = durable.WriteFile(path, b, 0o644)
	} else {
		err = writeAtomic(path, b)
	}
	if err != nil {
		return nil, fmt.Errorf("chunk locks: release %d in %s: %w", len(locks), path, err)
	}
	t.last = next + uint64(len(locks)) - 1
	for _, l := range locks {
		delete(t.held, l.Chunk)
	}
	return locks, nil
}

// ErrChanged is wrapped by Release when the file is not the one the Tracker read.
var ErrChanged = errors.New("file changed since it was read")

// lastVersion is the version of the last whole line of b, 0 if there is none or it does not
// start with one.
func lastVersion(b []byte) uint64 {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return 0
	}
	ln := b[bytes.LastIndexByte(b[:len(b)-1], '\n')+1:]
	v, _, err := changelog.ParseVersion(ln[:len(ln)-1])
	if err != nil {
		return 0
	}
	return v
}

func writeAtomic(path string, b []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(path))
}
