package failover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mfsha/mfsha/internal/durable"
	"github.com/mfsha/mfsha/restorer"
)

// ErrRestoredLeaseHeld: DATA_PATH holds a point-in-time restore to serve, but another node
// holds the lease. Standing by would archive the restore, so the node refuses to run.
var ErrRestoredLeaseHeld = errors.New("the master DATA_PATH holds restored metadata, but another node holds the lease")

// restoredLocal tells whether this host's master DATA_PATH holds metadata made by `mfsha
// restore` for this cluster and not served since (its version is still the restore's), and
// says what it is. Only boot honors it: the operator put it there to serve it, which a node
// started as master does with a free lease, on a new timeline.
//
// Safety: the mark never steals a lease (a held one makes the node refuse to run, see
// ErrRestoredLeaseHeld), and it is deleted once the master serves, so a node restarted later
// on its own files follows the ordinary rule (its files must continue the stream).
func (n *Node) restoredLocal() (string, bool, error) {
	dir := n.d.Master.DataPath()
	r, ok, err := restorer.ReadRestored(dir)
	if err != nil || !ok {
		return "", false, err
	}
	meta, err := newestMetadata(dir)
	switch {
	case r.Cluster != n.cfg.Cluster:
		return "", false, fmt.Errorf("%s: restored for cluster %q, this node is in %q", filepath.Join(dir, restorer.RestoredFile), r.Cluster, n.cfg.Cluster)
	case err != nil:
		return "", false, fmt.Errorf("%s names a restore, but: %w", filepath.Join(dir, restorer.RestoredFile), err)
	case meta.version != r.Version:
		return "", false, fmt.Errorf("%s names a restore of version %d, but %s is at version %d: served since, not a restore any more",
			filepath.Join(dir, restorer.RestoredFile), r.Version, meta.path, meta.version)
	}
	as := "its newest state"
	if r.LastTime != 0 {
		as = "its state at " + time.Unix(r.LastTime, 0).UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("the operator restored metadata of version %d (timeline %d, %s): the stream starts a new timeline", r.Version, r.Timeline, as), true, nil
}

// forgetRestored deletes the restore's mark once the master serves it.
func (n *Node) forgetRestored() {
	p := filepath.Join(n.d.Master.DataPath(), restorer.RestoredFile)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.log.Warn("the restore's mark could not be deleted", "file", p, "err", err)
	}
}

// startTimeline writes the first line of a restore that has none: `V: TS|IDLE()` in a new
// DATA_PATH/changelog.0.mfs, V being the restored metadata's version. IDLE changes nothing but
// the version (mfsmaster's restore.c, 3.0.117 and 4.x), so mfsmaster -a folds it at once and the
// shipper can ship it, starting the new timeline, before any client reaches the master. A
// directory that already holds changelog.0.mfs (a master ran on it) is left alone.
func startTimeline(dir string, now time.Time) error {
	meta, err := newestMetadata(dir)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "changelog.0.mfs")
	if _, err := os.Lstat(path); err == nil {
		return nil
	}
	line := fmt.Sprintf("%d: %d|IDLE()\n", meta.version, now.Unix())
	if err := durable.WriteFile(path, []byte(line), 0o644); err != nil {
		return fmt.Errorf("the restore's first line: %w", err)
	}
	return chownLike(path, dir)
}

// waitNewTimeline waits, up to DrainTimeout*10 (at least 30 s), until the shipper has shipped
// line last on a timeline newer than the stream's newest before this term.
func (n *Node) waitNewTimeline(ctx context.Context, t *term, last uint64) error {
	deadline := time.Now().Add(max(10*n.cfg.DrainTimeout, 30*time.Second))
	for {
		p := t.sh.Shipped()
		if p.Next > last && p.Timeline > 0 {
			if tl, ok, err := n.d.History.Newest(ctx); err == nil && ok && tl.Timeline == p.Timeline && tl.FirstVersion <= last {
				n.log.Info("the restore's new timeline is in the stream", "timeline", p.Timeline, "first_version", tl.FirstVersion)
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the restore's first line %d was not shipped on a new timeline in time (shipped: %+v)", last, p)
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

// chownLike gives path the owner of dir (DATA_PATH's: mfsmaster runs as WORKING_USER), when
// running as root.
func chownLike(path, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	return os.Chown(path, int(st.Uid), int(st.Gid))
}
