// Package failover makes one MooseFS master out of several hosts: a Node on each host either
// serves (holds the lease in NATS, runs mfsmaster, holds the virtual IP, ships the changelog)
// or stands by (keeps metadata materialized from the stream, and takes the lease when it is
// free). A master that fails, or that cannot renew its lease in time, fences itself first:
// never two masters.
package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mfsha/mfsha/internal/failsafe"
	"github.com/mfsha/mfsha/internal/liveness"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/stream"
	"github.com/mfsha/mfsha/restorer"
	"github.com/mfsha/mfsha/shipper"
)

// Role of a node.
type Role string

// Roles.
const (
	RoleMaster  Role = "master"
	RoleStandby Role = "standby"
)

// Shipper ships the local master's changelog; *shipper.Shipper fits.
type Shipper interface {
	Run(ctx context.Context) error
	Shipped() shipper.Position
	ReadNow() // read the files at once (a drain: the master no longer writes)
}

// Standby keeps metadata materialized from the stream; *restorer.Standby fits. Finish and
// HandOver are called only while Run is not running.
type Standby interface {
	Run(ctx context.Context) error
	Finish(ctx context.Context, until uint64, wait time.Duration) (restorer.Position, uint64, error)
	HandOver(dir string) error
	Local() uint64
	Streamed() uint64 // the stream's newest version when last read: Local beyond it is the metalogger's
	Materialized() restorer.Position
	// Lag's ok is false while the materialized metadata is not on the stream's newest
	// timeline (or nothing is materialized): such a standby cannot promote.
	Lag() (lines uint64, ok bool, why string)
}

// History tells what the stream holds.
type History interface {
	// Newest returns the newest timeline; ok false when the stream holds nothing.
	Newest(ctx context.Context) (tl stream.Timeline, ok bool, err error)
	// LineHash returns the stream.LineHash of one line of tl.
	LineHash(ctx context.Context, tl stream.Timeline, version uint64) (uint64, error)
}

// Deps are what a Node drives.
type Deps struct {
	Lease   *Lease
	Master  *Master
	VIP     *VIP
	History History
	// NewShipper makes the master's shipper, stamped with epoch; with linesOnly, one that
	// ships the changelog and nothing else (no snapshots, no retention, no liveness loop):
	// shipFirst's, stopped at any moment.
	NewShipper func(epoch func() uint64, linesOnly bool) (Shipper, error)
	NewStandby func() (Standby, error)
	// Placement, when set, is called every few seconds while this node is the master, to keep
	// the lease's NATS stream leader off this host.
	Placement func(ctx context.Context) error
	Log       *slog.Logger
	Metrics   *Metrics
	// Live, when set, receives a tick from the node's main loops (the master's health-check
	// loop, the standby's lease watch), for /health.
	Live *liveness.Monitor
	// Failsafe, when set, keeps a healthy master through a NATS election (DESIGN.md): serve
	// FailsafeHandler at its URL.
	Failsafe *Failsafe
	// Gate, when set, holds the clients back at the start of a switchover (gate.go).
	Gate *ClientGate
}

// Node is the failover agent of one host. Create it with New; Run does the work.
type Node struct {
	cfg  Config
	d    Deps
	log  *slog.Logger
	m    *Metrics
	role atomic.Value // Role

	cur       atomic.Pointer[term] // the term being served, nil outside serve
	checkedAt atomic.Int64         // unix nanoseconds of the current term's last good health check
	promiser  *failsafe.Promiser   // this node's failsafe promises (none without Deps.Failsafe)
	tickles   tickleList           // the last master's connections on the VIP (tickles.go)
}

// New checks cfg and returns a node.
func New(cfg Config, d Deps) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Lease == nil || d.Master == nil || d.VIP == nil || d.History == nil || d.NewShipper == nil || d.NewStandby == nil {
		return nil, errors.New("failover: missing dependency")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	n := &Node{cfg: cfg, d: d, log: d.Log.With("node", cfg.Name), m: d.Metrics}
	hold := time.Duration(0) // without failsafe it never promises: nothing to wait out
	if fs := d.Failsafe; fs != nil {
		if fs.Config.StopTimeout != cfg.MasterStopTimeout {
			return nil, fmt.Errorf("failsafe: MASTER_STOP_TIMEOUT %v, but the failsafe settings were checked with %v", cfg.MasterStopTimeout, fs.Config.StopTimeout)
		}
		if err := fs.Config.Validate(); err != nil {
			return nil, err
		}
		if fs.Signer == nil || fs.Verifier == nil || fs.URL == "" {
			return nil, errors.New("failsafe: needs SIGNING_KEY, TRUSTED_KEYS and this node's URL")
		}
		hold = fs.Config.Hold
	}
	n.promiser = failsafe.NewPromiser(cfg.Cluster, cfg.Name, hold, time.Now())
	n.role.Store(RoleStandby)
	return n, nil
}

// Role is the node's current role.
func (n *Node) Role() Role { return n.role.Load().(Role) }

func (n *Node) setRole(r Role) {
	n.role.Store(r)
	n.m.setRole(r)
}

// Run acts as the lease dictates until ctx ends, starting as start: a RoleMaster node takes a
// free lease at once if its own master's files continue the stream (the host that was master
// before a restart of the whole cluster) or hold a point-in-time restore to serve
// (restoredLocal: it returns ErrRestoredLeaseHeld if the lease is held); a RoleStandby node
// stands by. A master that stops on
// ctx stops mfsmaster cleanly, ships its last lines, removes the VIP and releases the lease.
func (n *Node) Run(ctx context.Context, start Role) error {
	if g := n.d.Gate; g != nil {
		if err := g.Open(); err != nil { // a gate an earlier run left closed, or no nftables
			n.log.Warn("client gate unavailable: a switchover removes the VIP without holding clients back first", "gate", g.String(), "err", err)
			n.d.Gate = nil
		}
	}
	var t *term
	if start == RoleMaster {
		var err error
		if t, err = n.boot(ctx); err != nil {
			return err
		}
	}
	fenced := false
	for ctx.Err() == nil {
		if t == nil {
			n.setRole(RoleStandby)
			if fenced {
				// The resynchronization of an old master (a fold by mfsmaster) can wait; the
				// promotion running elsewhere cannot, and may share this host's CPUs (in a lab).
				sleep(ctx, n.cfg.StartGrace)
			}
			t = n.standby(ctx)
			continue
		}
		n.setRole(RoleMaster)
		healthy := n.serve(ctx, t)
		t, fenced = nil, true
		if healthy && ctx.Err() == nil {
			t = n.retake(ctx)
		}
	}
	return nil
}

// boot takes a free lease with the local master's own files, when they hold every line the
// stream has; nil when the node must stand by instead.
func (n *Node) boot(ctx context.Context) (*term, error) {
	return n.takeLocal(ctx, "boot", time.Time{})
}

// retake follows a term that ended only because the lease was lost while mfsmaster was
// healthy (renewals missed their deadline: NATS slow, its leader moving, a loaded host). It
// takes the lease again with this host's own files when the lease is free, or still names
// this node, and the files continue the stream (boot's rule), trying until two lease TTLs
// have passed; nil when the node must stand by instead.
//
// Why: those files may hold lines the shipper had not shipped when the term ended. Standing
// by archives them, and a promotion from the stream (this node's own, or another standby's
// without a metalogger that got them) would serve without them: acknowledged writes lost
// to a failover nobody needed. Safety: the lease is taken by compare-and-set on the revision
// read (as at boot), so a node that promoted meanwhile wins and this one stands by; and the
// files must hold the stream's last line with the stream's hash, so a history that moved on
// without them is never resumed.
func (n *Node) retake(ctx context.Context) *term {
	t, _ := n.takeLocal(ctx, "retake", time.Now().Add(2*n.cfg.LeaseTTL)) // no restore at a retake: no error
	return t
}

// takeLocal is boot and retake: what names the log lines; a zero until retries a lease that
// cannot be read forever.
func (n *Node) takeLocal(ctx context.Context, what string, until time.Time) (*term, error) {
	var restored string // at boot: why DATA_PATH holds a restore to serve (see restoredLocal)
	if until.IsZero() {
		why, ok, err := n.restoredLocal()
		if err != nil {
			n.log.Error(what+": a restore's mark is ignored", "err", err)
		} else if ok {
			restored = why
		}
	}
	// giveUp handles a try that could not decide (why, with its cause as key=val): past until
	// the node stands by (true); before, it waits a moment to try again (false).
	giveUp := func(why, key string, val any) bool {
		if !until.IsZero() && time.Now().After(until) {
			n.log.Warn(what+": "+why+"; standing by", key, val)
			return true
		}
		n.log.Warn(what+": "+why+"; retrying", key, val)
		sleep(ctx, min(time.Second, n.cfg.RenewEvery))
		return false
	}
	for ctx.Err() == nil {
		rec, rev, err := n.d.Lease.Read(ctx)
		if err != nil {
			if giveUp("cannot read the lease", "err", err) {
				return nil, nil
			}
			continue
		}
		n.promiser.ObserveEpoch(rec.Epoch)
		mine := rev != 0 && rec.Holder == n.cfg.Name && rec.State != StateReleased
		if rev == 0 {
			if ok, why := n.mayTakeExpired(ctx); !ok {
				if giveUp("the lease is free but this node may not take it", "why", why) {
					return nil, nil
				}
				continue
			}
		}
		if !Free(rec, rev, n.cfg.Name) && !mine {
			if restored != "" {
				return nil, fmt.Errorf("%w (%s, epoch %d): stop every failover node first (the master hands over), then start this one", ErrRestoredLeaseHeld, rec.Holder, rec.Epoch)
			}
			n.log.Info(what+": the lease is held by another node; standing by", "holder", rec.Holder, "epoch", rec.Epoch)
			return nil, nil
		}
		ok, why, err := n.localContinues(ctx)
		if err != nil {
			if giveUp("cannot compare the local files with the stream", "err", err) {
				return nil, nil
			}
			continue
		}
		serveRestore := !ok && restored != ""
		if serveRestore {
			n.log.Warn(what+": serving a point-in-time restore", "why", restored, "instead_of", why)
			ok, why = true, restored
		}
		if !ok {
			n.log.Info(what+": the local master's files do not continue the stream; standing by", "why", why)
			return nil, nil
		}
		if mine {
			n.log.Info(what+": the lease still names this node: taking it over", "epoch", rec.Epoch)
		}
		t, err := n.takeOver(ctx, rec, rev, why, serveRestore)
		if errors.Is(err, ErrLeaseLost) {
			// Renewals failed while mfsmaster loaded (a busy disk, NATS electing): the files
			// are no less this cluster's newest, and standing by would archive them, perhaps
			// the only copy (an empty stream). Read the lease again and try again.
			if giveUp("the lease was lost while starting", "err", err) {
				return nil, nil
			}
			continue
		}
		if err != nil {
			n.log.Error(what+": could not start as master; standing by", "err", err)
			return nil, nil
		}
		return t, nil
	}
	return nil, nil
}

// localContinues tells whether this host's master DATA_PATH holds every line the stream has
// (so that a master started on it loses nothing), and why.
func (n *Node) localContinues(ctx context.Context) (bool, string, error) {
	dir := n.d.Master.DataPath()
	meta, metaErr := newestMetadata(dir)
	tl, ok, err := n.d.History.Newest(ctx)
	if err != nil {
		return false, "", err
	}
	if !ok {
		if metaErr != nil {
			return false, fmt.Sprintf("the stream is empty and %s holds no metadata: %v", dir, metaErr), nil
		}
		return true, "the stream is empty; starting from " + meta.path, nil
	}
	hash, err := n.d.History.LineHash(ctx, tl, tl.LastVersion)
	if err != nil {
		return false, "", err
	}
	local, found, err := shipper.LineHashAt(dir, shipper.KindMaster, tl.LastVersion)
	if err != nil {
		return false, "", err
	}
	switch {
	case found && local == hash:
		return true, fmt.Sprintf("the local changelog holds the stream's last line %d", tl.LastVersion), nil
	case found:
		return false, fmt.Sprintf("line %d differs between the local changelog and the stream (another history)", tl.LastVersion), nil
	case metaErr == nil && meta.version == tl.LastVersion+1 && meta.metaID == tl.MetaID:
		return true, fmt.Sprintf("%s is at version %d, right after the stream's last line", meta.path, meta.version), nil
	}
	return false, fmt.Sprintf("the stream's last line %d (timeline %d) is not in %s", tl.LastVersion, tl.Timeline, dir), nil
}

type metaFile struct {
	path            string
	version, metaID uint64
}

// newestMetadata finds the newest whole metadata file a master would load from dir.
func newestMetadata(dir string) (metaFile, error) {
	var best metaFile
	for _, name := range []string{"metadata.mfs", "metadata.mfs.back"} {
		p := filepath.Join(dir, name)
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		h, err := metafile.CheckFile(f)
		f.Close()
		if err != nil {
			continue
		}
		if h.Version > best.version {
			best = metaFile{path: p, version: h.Version, metaID: h.MetaID}
		}
	}
	if best.path == "" {
		return best, fmt.Errorf("no complete metadata.mfs or metadata.mfs.back in %s", dir)
	}
	return best, nil
}

// nodeAddr is this node's address for status: NODE_ADDR, else the host name.
func (n *Node) nodeAddr() string {
	if n.cfg.Addr != "" {
		return n.cfg.Addr
	}
	h, _ := os.Hostname()
	return h
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// short is an error's first line, for lease records.
func short(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
