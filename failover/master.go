package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mfsha/mfsha/internal/moosefs"
)

// MasterConfig says where and how to run mfsmaster.
type MasterConfig struct {
	Bin    string // MFSMASTER_BIN: "mfsmaster" (the default; looked up on PATH, then /usr/sbin, /sbin)
	Config string // path of mfsmaster.cfg
	// A clean stop (SIGTERM, which writes metadata.mfs) gets this long, then SIGKILL;
	// 0 means DefaultMasterStopTimeout.
	StopTimeout time.Duration
}

// DefaultMasterStopTimeout: mfsmaster 3.0.117 needs 2 to 4 s for a clean stop of an empty file
// system (it waits three 1-second ticks before telling its data writer to finish), plus the
// time to write metadata.mfs.
const DefaultMasterStopTimeout = 10 * time.Second

// Errors of Master.
var (
	ErrMasterRunning = errors.New("this agent's mfsmaster already runs")
	ErrDataLocked    = errors.New("another mfsmaster holds the data directory's lock")
)

// What mfsmaster 3.0.117 keeps in DATA_PATH, its working directory (mfscommon/main.c wdlock,
// mfsmaster/bgsaver.c). The files stay after an exit: only their fcntl locks say who runs.
const (
	// "PID\n" of the master, write-locked (F_SETLK) while it runs. `mfsmaster` without an
	// action (= start) refuses to run while another holds it; `restart` would SIGTERM it.
	masterLockFile = ".mfsmaster.lock"
	// Locked by the master's "data writer" child, which writes the changelog; a master does
	// not start while it is held ("bgsaver lock exists").
	writerLockFile = ".bgwriter.lock"
)

// Timings of the supervisor.
const (
	startPoll    = 25 * time.Millisecond  // between probes while mfsmaster loads
	startProbe   = time.Second            // bound of one such probe
	childrenWait = time.Second            // after a clean exit, for the data writer to finish alone
	killWait     = 5 * time.Second        // for processes to vanish after SIGKILL
	outputWait   = time.Second            // for the last output lines after the group is gone
	procPoll     = 10 * time.Millisecond  // polling of /proc and of lock files
	tailLines    = 20                     // output lines kept for errors
	maxLineBytes = 4096                   // longer output lines are cut
	portCheck    = 200 * time.Millisecond // bound of the "is the port already taken" dial
)

// Master runs one mfsmaster child at a time and stops it: the failover node starts it only
// while it holds the lease. All methods are safe for concurrent use.
type Master struct {
	cfg       MasterConfig
	log       *slog.Logger
	bin       moosefs.Mfsmaster
	dataPath  string
	probeAddr string
	saveMode  int

	mu          sync.Mutex
	starting    bool
	cancelStart bool   // a Stop or Kill came while starting: do not spawn
	child       *child // the last child started, nil before Start
}

// NewMaster reads cfg.Config, mfsmaster's own file (`KEY = value` lines, `#` comment lines,
// other keys ignored, the last definition wins as in mfsmaster), for DATA_PATH (default
// /var/lib/mfs), the client port, MATOCL_LISTEN_HOST (default *) and MATOCL_LISTEN_PORT
// (default 9421), and CHANGELOG_SAVE_MODE (default 0), and finds the binary and its release (`mfsmaster -v`). Errors name the
// file, and the line for bad syntax.
func NewMaster(cfg MasterConfig, log *slog.Logger) (*Master, error) {
	if cfg.Bin == "" {
		cfg.Bin = "mfsmaster"
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = DefaultMasterStopTimeout
	}
	if cfg.StopTimeout < 0 {
		return nil, fmt.Errorf("mfsmaster stop timeout %v: want more than 0", cfg.StopTimeout)
	}
	if cfg.Config == "" {
		return nil, errors.New("mfsmaster config: no file given")
	}
	abs, err := filepath.Abs(cfg.Config)
	if err != nil {
		return nil, fmt.Errorf("mfsmaster config %s: %w", cfg.Config, err)
	}
	cfg.Config = abs
	bin, err := moosefs.FindMfsmaster(context.Background(), cfg.Bin)
	if err != nil {
		return nil, err
	}
	mc, err := readMasterConfig(cfg.Config)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Master{cfg: cfg, log: log, bin: bin, dataPath: mc.dataPath, probeAddr: mc.probeAddr, saveMode: mc.changelogSaveMode}, nil
}

// Mfsmaster is the binary this Master runs and its release.
func (m *Master) Mfsmaster() moosefs.Mfsmaster { return m.bin }

// DataPath is the master's DATA_PATH.
func (m *Master) DataPath() string { return m.dataPath }

// ChangelogSaveMode is mfsmaster.cfg's CHANGELOG_SAVE_MODE (0 when unset, as in mfsmaster).
//
// Why it matters (failover/DESIGN.md, "Acknowledged before written"): with 0, mfsmaster
// answers a client before its changelog line is in changelog.0.mfs (a background writer
// process appends it later), so a kill of every mfsmaster process, the writer included, can
// take back a change the client was told was made when no metalogger got the line either (the
// first seconds after a master starts, before they connect). With 1 or 2 the line is written
// in the call that makes the change, before the answer is queued: the shipper and a drain
// after any kill see every acknowledged change.
func (m *Master) ChangelogSaveMode() int { return m.saveMode }

// ClientPort is the port mfsmaster serves clients on (MATOCL_LISTEN_PORT).
func (m *Master) ClientPort() uint16 {
	ap, err := netip.ParseAddrPort(m.probeAddr)
	if err != nil {
		return 9421 // readMasterConfig checked the port; the host cannot be anything else
	}
	return ap.Port()
}

// ProbeAddr is the address to health-check the local master on: 127.0.0.1:PORT when it
// listens on every address (* or 0.0.0.0), else its listen host.
func (m *Master) ProbeAddr() string { return m.probeAddr }

// Start runs `mfsmaster -f -c CONFIG` (in the foreground; with -a when autoRestore: metadata
// rebuilt from metadata.mfs.back and the changelogs when metadata.mfs is missing, as after a
// crash) as a child in its own process group, its stdout and stderr logged line by line at
// info with the attribute "mfsmaster" (its pid). It returns the metadata version of the
// master's first answer to Probe on ProbeAddr. If the child exits first, or ctx ends first
// (the child is killed then), the error carries its last output lines.
//
// It refuses with ErrMasterRunning while this Master's child runs, and with ErrDataLocked
// while any other process holds DATA_PATH's lock files (a master or its data writer): never
// two masters on the same data. It also refuses when something already listens on ProbeAddr.
// The child gets SIGKILL if the agent's process dies: a master must not outlive the node that
// renews its lease.
func (m *Master) Start(ctx context.Context, autoRestore bool) (version uint64, err error) {
	fail := func(err error) (uint64, error) { return 0, fmt.Errorf("start mfsmaster on %s: %w", m.dataPath, err) }
	m.mu.Lock()
	prev := m.child
	if m.starting || (prev != nil && !closed(prev.exited)) {
		m.mu.Unlock()
		if prev != nil && !closed(prev.exited) {
			return fail(fmt.Errorf("pid %d: %w", prev.pid, ErrMasterRunning))
		}
		return fail(fmt.Errorf("a start is under way: %w", ErrMasterRunning))
	}
	m.starting, m.cancelStart = true, false
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.starting = false
		m.mu.Unlock()
	}()
	if prev != nil { // exited: let what is left of its group go first
		select {
		case <-prev.gone:
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	if err := m.checkFree(ctx); err != nil {
		return fail(err)
	}
	// A master older than its metadata refuses it only after minutes of loading on a big
	// file system, with a message in its log; refuse before it runs, naming both releases.
	if err := m.bin.CheckDataDir(m.dataPath); err != nil {
		return fail(err)
	}
	args := []string{"-f", "-c", m.cfg.Config}
	if autoRestore {
		args = append(args, "-a")
	}
	m.mu.Lock()
	if m.cancelStart {
		m.mu.Unlock()
		return fail(errors.New("stopped while starting"))
	}
	c, err := m.spawn(args)
	if err == nil {
		m.child = c
	}
	m.mu.Unlock()
	if err != nil {
		return fail(err)
	}

	started := time.Now()
	poll := time.NewTicker(startPoll)
	defer poll.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, startProbe)
		version, perr := Probe(pctx, nil, m.probeAddr)
		cancel()
		if perr == nil {
			m.log.Info("mfsmaster serves", "pid", c.pid, "version", version, "took", time.Since(started).Round(time.Millisecond))
			return version, nil
		}
		select {
		case <-c.exited:
			<-c.gone
			return fail(fmt.Errorf("pid %d exited (%v) before answering on %s%s", c.pid, c.state, m.probeAddr, c.tail.format()))
		case <-ctx.Done():
			kerr := c.kill()
			_, err := fail(fmt.Errorf("pid %d not answering on %s (last probe: %v), killed it: %w%s",
				c.pid, m.probeAddr, perr, ctx.Err(), c.tail.format()))
			return 0, errors.Join(err, kerr)
		case <-poll.C:
		}
	}
}

// checkFree returns an error unless DATA_PATH's locks are free and nothing listens on
// ProbeAddr.
func (m *Master) checkFree(ctx context.Context) error {
	for _, name := range []string{masterLockFile, writerLockFile} {
		pid, err := lockOwner(filepath.Join(m.dataPath, name))
		if err != nil {
			return err
		}
		if pid != 0 {
			return fmt.Errorf("%s is locked by %s: %w", name, pidString(pid), ErrDataLocked)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, portCheck)
	defer cancel()
	var d net.Dialer
	if conn, err := d.DialContext(dctx, "tcp", m.probeAddr); err == nil {
		conn.Close()
		return fmt.Errorf("something already listens on %s (another master with other data?)", m.probeAddr)
	}
	return nil
}

// Exited is closed when the current child exits, for any reason; nil before the first Start.
func (m *Master) Exited() <-chan struct{} {
	if c := m.current(); c != nil {
		return c.exited
	}
	return nil
}

// Running reports whether a child started by this Master is alive.
func (m *Master) Running() bool {
	c := m.current()
	return c != nil && !closed(c.exited)
}

// Pid of the running child, 0 if none.
func (m *Master) Pid() int {
	if c := m.current(); c != nil && !closed(c.exited) {
		return c.pid
	}
	return 0
}

// Stop sends SIGTERM to the child and waits up to timeout (0: MasterConfig.StopTimeout),
// bounded also by ctx, for it to exit; then it SIGKILLs its process group. It returns once
// every process of the group is gone (its data writer too). clean means mfsmaster exited with
// status 0, which it does after writing metadata.mfs. Idempotent: with no child, or one
// already stopped, it only reports how the last one ended (clean true if there never was
// one). A Start under way that has not spawned yet gives up. Safe to call concurrently with
// Exited watchers, Kill and other Stops.
func (m *Master) Stop(ctx context.Context, timeout time.Duration) (clean bool, err error) {
	c := m.stopping()
	if c == nil {
		return true, nil
	}
	if timeout <= 0 {
		timeout = m.cfg.StopTimeout
	}
	if !closed(c.exited) {
		started := time.Now()
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err == nil {
			m.log.Info("stopping mfsmaster", "pid", c.pid, "timeout", timeout)
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-c.exited:
			m.log.Info("mfsmaster stopped", "pid", c.pid, "clean", c.clean(), "took", time.Since(started).Round(time.Millisecond))
		case <-t.C:
			m.log.Warn("mfsmaster did not stop in time: killing it", "pid", c.pid, "timeout", timeout)
			err := c.kill()
			return c.clean(), err
		case <-ctx.Done():
			m.log.Warn("mfsmaster stop cut short: killing it", "pid", c.pid, "err", ctx.Err())
			err := c.kill()
			return c.clean(), err
		}
	}
	<-c.gone
	return c.clean(), c.goneErr
}

// Kill sends SIGKILL to the child's process group at once and waits until it is gone: fencing
// when there is no time for a clean stop. Without a child it does nothing; a Start under way
// that has not spawned yet gives up.
func (m *Master) Kill() error {
	if c := m.stopping(); c != nil {
		return c.kill()
	}
	return nil
}

// StopForeign stops an mfsmaster that this Master did not start but that holds DATA_PATH's
// lock (left running by systemd, by hand, or by a previous agent): SIGTERM, then SIGKILL after
// StopTimeout (or when ctx ends). An orphaned data writer holding its lock alone is killed
// too. It returns whether there was one, and an error if one survives or cannot be signalled.
func (m *Master) StopForeign(ctx context.Context) (found bool, err error) {
	ownPgid := 0
	if c := m.current(); c != nil && !closed(c.gone) {
		ownPgid = c.pid
	}
	foreign := func(name string) (int, error) {
		pid, err := lockOwner(filepath.Join(m.dataPath, name))
		if err != nil || pid == 0 {
			return 0, err
		}
		if pid < 0 {
			return pid, fmt.Errorf("%s is locked by a process not visible here: %w", name, ErrDataLocked)
		}
		if ownPgid != 0 && processGroup(pid) == ownPgid {
			return 0, nil // ours
		}
		return pid, nil
	}
	pid, err := foreign(masterLockFile)
	if err != nil {
		return pid != 0, err
	}
	if pid > 0 {
		found = true
		m.log.Warn("stopping an mfsmaster this agent did not start", "pid", pid, "data", m.dataPath)
		leader := processGroup(pid) == pid // its data writer is in its group (e.g. systemd's, or ours)
		syscall.Kill(pid, syscall.SIGTERM)
		wctx, cancel := context.WithTimeout(ctx, m.cfg.StopTimeout)
		err := waitLockFree(wctx, foreign, masterLockFile, 0)
		cancel()
		if err != nil {
			m.log.Warn("mfsmaster did not stop in time: killing it", "pid", pid, "timeout", m.cfg.StopTimeout)
			if err := waitLockFree(context.Background(), foreign, masterLockFile, killWait); err != nil {
				return true, err
			}
			if leader {
				// A data writer not yet holding its lock would outlive the killed master.
				if err := killGroup(pid); err != nil {
					return true, err
				}
			}
		}
	}
	// After a clean exit its data writer has finished or is finishing; an orphan is killed.
	wpid, err := foreign(writerLockFile)
	if err != nil || wpid == 0 {
		return found, err
	}
	wctx, cancel := context.WithTimeout(ctx, childrenWait)
	defer cancel()
	if waitLockFree(wctx, foreign, writerLockFile, 0) == nil {
		return found, nil
	}
	m.log.Warn("killing a leftover mfsmaster data writer", "pid", wpid, "data", m.dataPath)
	return true, waitLockFree(context.Background(), foreign, writerLockFile, killWait)
}

func (m *Master) current() *child {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.child
}

// stopping returns the current child and makes a Start under way give up before it spawns.
func (m *Master) stopping() *child {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.starting {
		m.cancelStart = true
	}
	return m.child
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
