package failover

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

	mu          sync.Mutex
	starting    bool
	cancelStart bool   // a Stop or Kill came while starting: do not spawn
	child       *child // the last child started, nil before Start
}

// NewMaster reads cfg.Config, mfsmaster's own file (`KEY = value` lines, `#` comment lines,
// other keys ignored, the last definition wins as in mfsmaster), for DATA_PATH (default
// /var/lib/mfs) and the client port, MATOCL_LISTEN_HOST (default *) and MATOCL_LISTEN_PORT
// (default 9421), and finds the binary and its release (`mfsmaster -v`). Errors name the
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
	return &Master{cfg: cfg, log: log, bin: bin, dataPath: mc.dataPath, probeAddr: mc.probeAddr}, nil
}

// Mfsmaster is the binary this Master runs and its release.
func (m *Master) Mfsmaster() moosefs.Mfsmaster { return m.bin }

// DataPath is the master's DATA_PATH.
func (m *Master) DataPath() string { return m.dataPath }

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

// waitLockFree polls until owner(name) reports no foreign holder. With kill > 0 it SIGKILLs
// each holder it sees and gives up after kill; else it gives up when ctx ends.
func waitLockFree(ctx context.Context, owner func(string) (int, error), name string, kill time.Duration) error {
	if kill > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, kill)
		defer cancel()
	}
	for {
		pid, err := owner(name)
		if err != nil || pid == 0 {
			return err
		}
		if kill > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still locked by pid %d: %w", name, pid, ctx.Err())
		case <-time.After(procPoll):
		}
	}
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

// lockOwner returns the pid holding a conflicting fcntl lock on path (0: none or no file; -1:
// a holder whose pid is not visible from here).
func lockOwner(path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("lock file: %w", err)
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return 0, fmt.Errorf("lock file %s: F_GETLK: %w", path, err)
	}
	switch {
	case lk.Type == syscall.F_UNLCK:
		return 0, nil
	case lk.Pid <= 0:
		return -1, nil
	}
	return int(lk.Pid), nil
}

func pidString(pid int) string {
	if pid < 0 {
		return "a process not visible here"
	}
	return "pid " + strconv.Itoa(pid)
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// masterConfig is what the agent needs from mfsmaster.cfg.
type masterConfig struct {
	dataPath, probeAddr string
}

// readMasterConfig parses mfsmaster.cfg as mfsmaster 3.0.117 does (mfscommon/cfg.c): a line
// whose first non-blank character is # is a comment; the value runs to the end of the line,
// a # included, so a value with # is refused for the keys read here rather than guessed at.
func readMasterConfig(path string) (masterConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return masterConfig{}, fmt.Errorf("mfsmaster config: %w", err)
	}
	type value struct {
		s    string
		line int
	}
	kv := map[string]value{}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return masterConfig{}, fmt.Errorf("%s line %d: want KEY = value, got %q", path, n+1, line)
		}
		kv[k] = value{strings.TrimSpace(v), n + 1}
	}
	get := func(key, def string) (string, error) {
		v, ok := kv[key]
		switch {
		case !ok:
			return def, nil
		case v.s == "":
			return "", fmt.Errorf("%s line %d: %s is empty", path, v.line, key)
		case strings.Contains(v.s, "#"):
			return "", fmt.Errorf("%s line %d: %s = %q: mfsmaster would keep the # and what follows "+
				"in the value; put comments on their own line", path, v.line, key, v.s)
		}
		return v.s, nil
	}
	var mc masterConfig
	if mc.dataPath, err = get("DATA_PATH", "/var/lib/mfs"); err != nil {
		return mc, err
	}
	if !filepath.IsAbs(mc.dataPath) {
		return mc, fmt.Errorf("%s line %d: DATA_PATH = %s: want an absolute path", path, kv["DATA_PATH"].line, mc.dataPath)
	}
	// MATOCU_* are the deprecated names, used only when no MATOCL_* is set (matoclserv.c).
	hostKey, portKey := "MATOCL_LISTEN_HOST", "MATOCL_LISTEN_PORT"
	_, clHost := kv[hostKey]
	_, clPort := kv[portKey]
	_, cuHost := kv["MATOCU_LISTEN_HOST"]
	_, cuPort := kv["MATOCU_LISTEN_PORT"]
	if !clHost && !clPort && (cuHost || cuPort) {
		hostKey, portKey = "MATOCU_LISTEN_HOST", "MATOCU_LISTEN_PORT"
	}
	host, err := get(hostKey, "*")
	if err != nil {
		return mc, err
	}
	port, err := get(portKey, "9421")
	if err != nil {
		return mc, err
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return mc, fmt.Errorf("%s line %d: %s = %s: want a port number", path, kv[portKey].line, portKey, port)
	}
	if host == "*" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	mc.probeAddr = net.JoinHostPort(host, port)
	return mc, nil
}

// child is one mfsmaster process and its process group.
type child struct {
	cmd     *exec.Cmd
	pid     int // also its process group's id
	log     *slog.Logger
	tail    *lineTail
	exited  chan struct{} // closed after cmd.Wait: state is set
	state   *os.ProcessState
	hurry   chan struct{} // closed by kill: no grace for the group
	hurryMu sync.Once
	gone    chan struct{} // closed once the group is gone and the output read: goneErr is set
	goneErr error
}

// spawn starts mfsmaster and the two goroutines that follow it: one reads its output, one
// reaps it and then what is left of its group.
func (m *Master) spawn(args []string) (*child, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(m.bin.Path, args...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	c := &child{
		cmd: cmd, pid: cmd.Process.Pid, log: m.log, tail: &lineTail{},
		exited: make(chan struct{}), hurry: make(chan struct{}), gone: make(chan struct{}),
	}
	m.log.Info("mfsmaster started", "pid", c.pid, "args", strings.Join(args, " "))
	output := make(chan struct{})
	go func() {
		defer close(output)
		c.readOutput(r)
	}()
	go c.reap(output)
	return c, nil
}

// reap waits for the process, then for the rest of its group (the data writer, a metadata
// saver): a short grace after an exit of its own, then SIGKILL; then for the output's end.
func (c *child) reap(output <-chan struct{}) {
	c.cmd.Wait()
	c.state = c.cmd.ProcessState
	close(c.exited)
	c.log.Info("mfsmaster exited", "pid", c.pid, "status", c.state.String())
	grace := time.NewTimer(childrenWait)
	defer grace.Stop()
	for len(groupMembers(c.pid)) > 0 {
		select {
		case <-grace.C:
		case <-c.hurry:
		case <-time.After(procPoll):
			continue
		}
		c.goneErr = killGroup(c.pid)
		break
	}
	select {
	case <-output:
	case <-time.After(outputWait):
	}
	close(c.gone)
}

// kill SIGKILLs the group and waits until it is gone.
func (c *child) kill() error {
	c.hurryMu.Do(func() { close(c.hurry) })
	if !closed(c.exited) {
		// The leader is not reaped yet, so its pid still names this group.
		syscall.Kill(-c.pid, syscall.SIGKILL)
	}
	select {
	case <-c.gone:
		return c.goneErr
	case <-time.After(killWait + outputWait + childrenWait):
		return fmt.Errorf("mfsmaster pid %d: still there %v after SIGKILL", c.pid, killWait)
	}
}

// clean: it exited with status 0 (after writing metadata.mfs).
func (c *child) clean() bool {
	return closed(c.exited) && c.state.Success()
}

// readOutput logs the output line by line. mfsmaster -f prints most messages twice, through
// syslog's copy to stderr ("IDENT[PID]: text") and then plainly: the plain copy is dropped.
func (c *child) readOutput(r *os.File) {
	defer r.Close()
	br := bufio.NewReaderSize(r, maxLineBytes)
	tag := "[" + strconv.Itoa(c.pid) + "]: "
	var last string // the last syslog copy
	for {
		line, err := br.ReadSlice('\n')
		text := strings.TrimRight(string(line), "\r\n")
		for errors.Is(err, bufio.ErrBufferFull) { // cut: skip the rest of the line
			_, err = br.ReadSlice('\n')
		}
		if _, body, ok := strings.Cut(text, tag); ok {
			text, last = body, body
		} else if text == last {
			text, last = "", ""
		}
		if text != "" {
			c.tail.add(text)
			c.log.Info(text, "mfsmaster", c.pid)
		}
		if err != nil {
			return
		}
	}
}

// groupMembers lists the live (not zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pg, state := procStat(pid); pg == pgid && state != 'Z' && state != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// killGroup SIGKILLs the group while it has members and waits until none is left. It signals
// the group only after seeing a member, so the id cannot name another group by then.
func killGroup(pgid int) error {
	deadline := time.Now().Add(killWait)
	for {
		members := groupMembers(pgid)
		if len(members) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mfsmaster process group %d: %v still there %v after SIGKILL", pgid, members, killWait)
		}
		syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(procPoll)
	}
}

// processGroup returns the process group of pid, 0 if it is gone.
func processGroup(pid int) int {
	pg, _ := procStat(pid)
	return pg
}

// procStat reads the process group and state of pid from /proc (0 if it is gone).
func procStat(pid int) (pgid int, state byte) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	// "pid (comm) state ppid pgrp ...", where comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0, 0
	}
	pgid, _ = strconv.Atoi(f[2])
	return pgid, f[0][0]
}

// lineTail keeps the last output lines, for errors.
type lineTail struct {
	mu    sync.Mutex
	lines []string
}

func (t *lineTail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailLines {
		t.lines = append(t.lines[:0], t.lines[1:]...)
	}
	t.lines = append(t.lines, s)
}

func (t *lineTail) format() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "\n(no output)"
	}
	return "\n--- last output of mfsmaster:\n" + strings.Join(t.lines, "\n")
}
