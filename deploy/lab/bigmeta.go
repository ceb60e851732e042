package lab

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/mfsha/mfsha/internal/durable"
)

// MakeMetadata writes DIR/metadata.mfs holding files f2..f(inodes+1) in the root directory,
// made by the real mfsmaster (the binary named) in seconds even for a million inodes: a
// synthetic changelog (a SETMETAID line, then one CREATE per file, all at unix time ts)
// replayed by `mfsmaster -a restore`, which serves nothing and exits. It returns the
// metadata's version, inodes + 2. The file has the format of that mfsmaster's release.
// MakeTree makes a realistic tree instead.
func MakeMetadata(ctx context.Context, mfsmaster, dir string, metaID uint64, inodes int, ts int64) (uint64, error) {
	r, err := foldNew(ctx, mfsmaster, dir, func(w io.Writer) error {
		if _, err := fmt.Fprintf(w, "1: %d|SETMETAID(%d)\n", ts, metaID); err != nil {
			return err
		}
		return WriteCreates(w, 2, uint64(inodes+1), ts)
	}, func() uint64 { return uint64(inodes + 2) })
	return r.Version, err
}

// Folded is what foldNew measured.
type Folded struct {
	Version  uint64        // of the metadata made
	Generate time.Duration // writing the changelog
	Fold     time.Duration // mfsmaster -a restore
	MaxRSS   int64         // mfsmaster's peak resident memory, bytes
	Size     int64         // of metadata.mfs
}

// foldNew writes a changelog with write onto a new file system ("MFSM NEW"), folds it with
// `mfsmaster -a restore` in a work directory under dir and moves the result to
// DIR/metadata.mfs, checking it has version want() (called after write).
func foldNew(ctx context.Context, mfsmaster, dir string, write func(io.Writer) error, want func() uint64) (Folded, error) {
	var r Folded
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	work, err := os.MkdirTemp(dir, ".make-metadata-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(work)
	data := filepath.Join(work, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return r, err
	}
	if err := os.WriteFile(filepath.Join(data, "metadata.mfs"), []byte(newFileSystem), 0o644); err != nil {
		return r, err
	}
	start := time.Now()
	f, err := os.Create(filepath.Join(data, "changelog.0.mfs"))
	if err != nil {
		return r, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := write(w); err != nil {
		f.Close()
		return r, fmt.Errorf("make metadata: %w", err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return r, err
	}
	if err := f.Close(); err != nil {
		return r, err
	}
	r.Generate = time.Since(start)
	cfg := filepath.Join(work, "mfsmaster.cfg")
	text := fmt.Sprintf("WORKING_USER = root\nWORKING_GROUP = root\nDATA_PATH = %s\nEXPORTS_FILENAME = %s\nLOCK_FILE = %s\n",
		data, filepath.Join(work, "exports"), filepath.Join(data, ".lock"))
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return r, err
	}
	if err := os.WriteFile(filepath.Join(work, "exports"), []byte("* / rw,alldirs,admin,maproot=0:0\n"), 0o644); err != nil {
		return r, err
	}
	start = time.Now()
	cmd := exec.CommandContext(ctx, mfsmaster, "-c", cfg, "-a", "restore")
	out, err := cmd.CombinedOutput()
	r.Fold = time.Since(start)
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.MaxRSS = ru.Maxrss << 10 // kilobytes on Linux
		}
	}
	if err != nil {
		return r, fmt.Errorf("make metadata: %s -a restore: %w\n%s", mfsmaster, err, tail("mfsmaster", out))
	}
	made := filepath.Join(data, "metadata.mfs")
	head := make([]byte, 24)
	mf, err := os.Open(made)
	if err != nil {
		return r, err
	}
	_, err = mf.ReadAt(head, 0)
	if fi, serr := mf.Stat(); serr == nil {
		r.Size = fi.Size()
	}
	mf.Close()
	if err != nil {
		return r, fmt.Errorf("make metadata: %w", err)
	}
	r.Version = binary.BigEndian.Uint64(head[8:16])
	if string(head[:8]) != "MFSM 2.0" || r.Version != want() {
		return r, fmt.Errorf("make metadata: mfsmaster made %q version %d, want version %d\n%s", head[:8], r.Version, want(), tail("mfsmaster", out))
	}
	if err := os.Rename(made, filepath.Join(dir, "metadata.mfs")); err != nil {
		return r, err
	}
	return r, nil
}

// WriteCreates writes changelog lines from..to at unix time ts, line V creating file fV
// (inode V) in the root: changes mfsmaster replays on top of MakeMetadata's file system
// (whose last inode is its version - 1).
func WriteCreates(w io.Writer, from, to uint64, ts int64) error {
	t := strconv.FormatInt(ts, 10)
	var b []byte
	for v := from; v <= to; v++ {
		n := strconv.FormatUint(v, 10)
		b = append(b[:0], n...)
		b = append(b, ": "+t+"|CREATE(1,f"...)
		b = append(b, n...)
		b = append(b, ",1,420,18,0,0,0):"...)
		b = append(b, n...)
		b = append(b, '\n')
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// SeedMaster puts a metadata file of inodes files into host's master DATA_PATH, replacing what
// is there, so that StartMaster loads a big file system.
func (l *Lab) SeedMaster(ctx context.Context, host string, metaID uint64, inodes int, ts int64) (uint64, error) {
	if _, err := l.host(host); err != nil {
		return 0, err
	}
	dir := l.MasterDataDir(host)
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	return MakeMetadata(ctx, l.cfg.MooseFS.Path("mfsmaster"), dir, metaID, inodes, ts)
}

// SeedMasterFile puts the metadata file meta (one made by MakeTree, say) into host's master
// DATA_PATH as metadata.mfs, replacing what is there (LinkOrCopy).
func (l *Lab) SeedMasterFile(host, meta string) error {
	if _, err := l.host(host); err != nil {
		return err
	}
	dir := l.MasterDataDir(host)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := LinkOrCopy(meta, filepath.Join(dir, "metadata.mfs")); err != nil {
		return fmt.Errorf("seed %s's master with %s: %w", host, meta, err)
	}
	return nil
}

// LinkOrCopy makes dst (new) hold src's bytes: a hard link when both are on one file system
// (mfsmaster never writes a metadata file in place: it renames), else a synced copy. An
// existing dst is an error either way.
func LinkOrCopy(src, dst string) error {
	err := os.Link(src, dst)
	if err == nil || errors.Is(err, os.ErrExist) {
		return err
	}
	return durable.CopyFile(src, dst)
}
