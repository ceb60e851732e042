package failover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mfsha/mfsha/internal/durable"
	"github.com/mfsha/mfsha/restorer"
	"github.com/mfsha/mfsha/shipper"
)

// archiveLocal moves the MooseFS files of this host's master DATA_PATH aside when the node
// stands by: they belong to an old term, and a master must never start on them or mix them
// with the stream's history. When they hold lines the stream does not (the master died before
// shipping them, or they diverged from the history the stream kept), it says so loudly; they
// are never shipped.
func (n *Node) archiveLocal(ctx context.Context) error {
	return n.archiveAgainst(ctx, n.d.Master.DataPath(), n.d.History)
}

// archiveAgainst is archiveLocal of dir against the stream h.
func (n *Node) archiveAgainst(ctx context.Context, dir string, h History) error {
	last, hash, found, err := shipper.LastLine(dir, shipper.KindMaster)
	if err != nil {
		return err
	}
	detail := ""
	if !found {
		// Only metadata (a master stopped cleanly after its lines rotated away, or a fresh
		// mfsmaster -a restore): superseded only if the stream goes past its version.
		if meta, err := newestMetadata(dir); err == nil {
			tl, ok, err := h.Newest(ctx)
			switch {
			case err != nil:
				return fmt.Errorf("compare %s with the stream: %w", dir, err)
			case !ok:
				detail = fmt.Sprintf("metadata at version %d (%s), and the stream holds nothing", meta.version, filepath.Base(meta.path))
			case meta.version > tl.LastVersion+1:
				detail = fmt.Sprintf("metadata at version %d (%s), beyond the stream's last line %d (timeline %d)", meta.version, filepath.Base(meta.path), tl.LastVersion, tl.Timeline)
			}
		}
	}
	if found {
		tl, ok, err := h.Newest(ctx)
		switch {
		case err != nil:
			return fmt.Errorf("compare %s with the stream: %w", dir, err)
		case !ok:
			detail = fmt.Sprintf("versions up to %d, and the stream holds nothing", last)
		case last > tl.LastVersion:
			detail = fmt.Sprintf("versions %d to %d, beyond the stream's last line %d (timeline %d)", tl.LastVersion+1, last, tl.LastVersion, tl.Timeline)
		case last >= tl.FirstVersion:
			sh, err := h.LineHash(ctx, tl, last)
			if err != nil {
				return fmt.Errorf("compare %s with the stream: %w", dir, err)
			}
			if sh != hash {
				detail = fmt.Sprintf("line %d differs from the stream's (timeline %d): another history", last, tl.Timeline)
			}
		}
	}
	return n.archiveFiles(dir, "standby", detail)
}

// archiveFiles moves dir's metadata* and changelog* files to ARCHIVE_PATH/TIME-why/. detail,
// when set, says which versions the stream lacks.
func (n *Node) archiveFiles(dir, why, detail string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && (strings.HasPrefix(e.Name(), "metadata") || strings.HasPrefix(e.Name(), "changelog") || e.Name() == restorer.RestoredFile) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil
	}
	if detail != "" {
		why = "unshipped"
	}
	dest := filepath.Join(n.cfg.ArchiveDir, time.Now().UTC().Format("20060102T150405.000Z")+"-"+why)
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	for _, name := range names {
		if err := move(filepath.Join(dir, name), filepath.Join(dest, name)); err != nil {
			return fmt.Errorf("archive %s: %w", dir, err)
		}
	}
	for _, d := range []string{dest, dir} {
		if err := durable.SyncDir(d); err != nil {
			return err
		}
	}
	if detail != "" {
		n.log.Warn("the local master's files hold "+detail+"; they are archived, never shipped nor mixed in", "archive", dest, "files", len(names))
		n.m.Archived.Inc()
	} else {
		n.log.Info("the local master's files are superseded by the stream; archived", "archive", dest, "files", len(names))
	}
	return nil
}

// move renames src to dst, copying (and syncing) when they are on different file systems.
func move(src, dst string) error {
	err := os.Rename(src, dst)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	if err := durable.CopyFile(src, dst); err != nil {
		return err
	}
	return os.Remove(src)
}
