package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Role names one long-running process of a host. At most one process per role runs on a host;
// the role names its log file (HOST/log/ROLE.log) and pid file (HOST/run/ROLE.pid).
type Role string

// The MooseFS roles. Other roles (NATS, mfsha, keepalived) are free-form names.
const (
	RoleMaster      Role = "master"
	RoleMetalogger  Role = "metalogger"
	RoleChunkserver Role = "chunkserver"
	RoleMount       Role = "mount"
)

var roleRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ProcSpec describes a long-running process to start on a host.
type ProcSpec struct {
	Host string
	Role Role
	// Argv is the command; Argv[0] is looked up on PATH and in /usr/sbin, /sbin, /usr/bin.
	Argv []string
	// Ready, if not nil, is polled until it returns nil; Start fails if it has not by the
	// deadline (ctx, bounded by Config.StartTimeout) or if the process exits first.
	Ready func(ctx context.Context) error
}

type procKey struct {
	host string
	role Role
}

// proc is a process started by this Lab value; done is closed once it has been reaped.
type proc struct {
	key  procKey
	pid  int
	done chan struct{}
}

// Start runs spec.Argv in the background inside the host's network namespace (in the caller's
// mount namespace), in a new process group, with stdin from /dev/null and stdout and stderr
// appended to LogPath(host, role). It records the pid in the state dir, then waits for
// spec.Ready. ctx bounds only that wait: the process outlives it. If the process is not ready
// in time it is killed and the error wraps ErrNotReady; if it exits first, ErrExited; both
// carry the tail of its log. It returns an error wrapping ErrRunning if the role already runs
// on the host. Two Starts of the same role on the same host must not run concurrently.
func (l *Lab) Start(ctx context.Context, spec ProcSpec) error {
	if _, err := l.host(spec.Host); err != nil {
		return err
	}
	if !roleRE.MatchString(string(spec.Role)) {
		return fmt.Errorf("lab %s: role %q: want lower-case letters, digits, - or _", l.cfg.Name, spec.Role)
	}
	if len(spec.Argv) == 0 {
		return fmt.Errorf("lab %s: start %s on %s: empty Argv", l.cfg.Name, spec.Role, spec.Host)
	}
	if pid, ok := l.Running(spec.Host, spec.Role); ok {
		return fmt.Errorf("lab %s: start %s on %s: pid %d: %w", l.cfg.Name, spec.Role, spec.Host, pid, ErrRunning)
	}
	p, err := l.spawn(spec)
	if err != nil {
		return err
	}
	if spec.Ready == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, l.cfg.StartTimeout)
	defer cancel()
	var lastErr error
	for delay := 20 * time.Millisecond; ; delay = min(delay*2, 250*time.Millisecond) {
		if lastErr = spec.Ready(wctx); lastErr == nil {
			return nil
		}
		select {
		case <-p.done:
			l.forget(spec.Host, spec.Role)
			return fmt.Errorf("lab %s: start %s on %s: %w (last check: %v)%s", l.cfg.Name, spec.Role, spec.Host, ErrExited, lastErr, l.logTail(spec.Host, spec.Role))
		case <-wctx.Done():
			kerr := l.KillProcess(context.Background(), spec.Host, spec.Role)
			return errors.Join(fmt.Errorf("lab %s: start %s on %s: %w (%v; last check: %v)%s", l.cfg.Name, spec.Role, spec.Host, ErrNotReady, wctx.Err(), lastErr, l.logTail(spec.Host, spec.Role)), kerr)
		case <-time.After(delay):
		}
	}
}

func (l *Lab) spawn(spec ProcSpec) (*proc, error) {
	fail := func(err error) (*proc, error) {
		return nil, fmt.Errorf("lab %s: start %s on %s: %w", l.cfg.Name, spec.Role, spec.Host, err)
	}
	nsenter, err := lookBin("nsenter")
	if err != nil {
		return fail(err)
	}
	bin, err := lookBin(spec.Argv[0])
	if err != nil {
		return fail(err)
	}
	for _, d := range []string{"log", "run"} {
		if err := os.MkdirAll(filepath.Join(l.HostDir(spec.Host), d), 0o755); err != nil {
			return fail(err)
		}
	}
	logf, err := os.OpenFile(l.LogPath(spec.Host, spec.Role), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(logf, "=== lab %s: %s: start %s\n", l.cfg.Name, time.Now().Format(time.RFC3339Nano), strings.Join(spec.Argv, " "))
	args := append([]string{"--net=" + l.NetnsPath(spec.Host), "--", bin}, spec.Argv[1:]...)
	cmd := exec.Command(nsenter, args...)
	cmd.Dir = l.HostDir(spec.Host)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fail(err)
	}
	p := &proc{key: procKey{spec.Host, spec.Role}, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	st, err := readProcStat(p.pid)
	if err == nil {
		err = writeFileAtomic(l.pidPath(spec.Host, spec.Role), fmt.Appendf(nil, "%d %d\n", p.pid, st.start))
	}
	if err != nil {
		syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
		return fail(err)
	}
	l.mu.Lock()
	l.procs[p.key] = p
	l.mu.Unlock()
	return p, nil
}

// Running returns the pid of role on host if it runs, whether this Lab value or another one
// (another process, same Dir) started it.
func (l *Lab) Running(host string, role Role) (pid int, ok bool) {
	pid, start, err := readPidFile(l.pidPath(host, role))
	if err != nil {
		return 0, false
	}
	if !alive(pid, start) {
		return 0, false
	}
	return pid, true
}

// Stop sends SIGTERM to role on host and waits until it has exited; if it has not within
// Config.StopTimeout (or ctx ends first) it kills its process group and returns an error.
// It returns an error wrapping ErrNotRunning if the role does not run.
func (l *Lab) Stop(ctx context.Context, host string, role Role) error {
	pid, ok := l.Running(host, role)
	if !ok {
		return fmt.Errorf("lab %s: stop %s on %s: %w", l.cfg.Name, role, host, ErrNotRunning)
	}
	_, start, _ := readPidFile(l.pidPath(host, role))
	syscall.Kill(pid, syscall.SIGTERM)
	wctx, cancel := context.WithTimeout(ctx, l.cfg.StopTimeout)
	defer cancel()
	if err := waitGone(wctx, pid, start); err != nil {
		kerr := l.KillProcess(context.Background(), host, role)
		return errors.Join(fmt.Errorf("lab %s: stop %s on %s (pid %d): %w%s", l.cfg.Name, role, host, pid, err, l.logTail(host, role)), kerr)
	}
	// Children in its group (the master's changelog writer) follow their parent.
	gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
	defer gcancel()
	if err := waitGroupGone(gctx, pid); err != nil {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	l.forget(host, role)
	return nil
}

// KillProcess sends SIGKILL to role on host and its whole process group, and waits until they
// are gone. It returns an error wrapping ErrNotRunning if the role does not run.
func (l *Lab) KillProcess(ctx context.Context, host string, role Role) error {
	pid, start, err := readPidFile(l.pidPath(host, role))
	if err != nil || !alive(pid, start) {
		l.forget(host, role)
		return fmt.Errorf("lab %s: kill %s on %s: %w", l.cfg.Name, role, host, ErrNotRunning)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	syscall.Kill(-pid, syscall.SIGKILL)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := waitGone(wctx, pid, start); err != nil {
		return fmt.Errorf("lab %s: kill %s on %s (pid %d): %w", l.cfg.Name, role, host, pid, err)
	}
	if err := waitGroupGone(wctx, pid); err != nil {
		return fmt.Errorf("lab %s: kill %s on %s (process group %d): %w", l.cfg.Name, role, host, pid, err)
	}
	l.forget(host, role)
	return nil
}

// KillHost models a power loss of the host: it cuts its link first (so no FIN or RST reaches a
// peer), removes the VIP from it if it holds it, and SIGKILLs every process in its namespace.
// The host's own address stays configured and its mounts stay as dead FUSE mounts; RestoreLink
// brings the host back, empty.
func (l *Lab) KillHost(ctx context.Context, host string) error {
	if err := l.CutLink(host); err != nil {
		return err
	}
	if err := l.DelVIP(host); err != nil {
		return err
	}
	if err := killInNetns(ctx, []string{l.NetnsPath(host)}); err != nil {
		return fmt.Errorf("lab %s: kill host %s: %w", l.cfg.Name, host, err)
	}
	l.forgetHost(host)
	return nil
}

// forgetHost removes the pid files of the host's processes that are gone.
func (l *Lab) forgetHost(host string) {
	entries, _ := os.ReadDir(filepath.Join(l.HostDir(host), "run"))
	for _, e := range entries {
		if role, ok := strings.CutSuffix(e.Name(), ".pid"); ok {
			l.forget(host, Role(role))
		}
	}
}

// forget removes the pid file of role on host if its process is gone.
func (l *Lab) forget(host string, role Role) {
	path := l.pidPath(host, role)
	if pid, start, err := readPidFile(path); err == nil && alive(pid, start) {
		return
	}
	os.Remove(path)
}

// Exec runs argv inside the host's network namespace (and the caller's mount namespace) and
// returns its combined stdout and stderr. A failure is returned as an error naming the lab,
// the host and the command, with the tail of the output. ctx cancellation kills the command.
func (l *Lab) Exec(ctx context.Context, host string, argv ...string) ([]byte, error) {
	cmd, err := l.command(ctx, host, argv)
	if err != nil {
		return nil, err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("lab %s: on %s: %s: %w%s", l.cfg.Name, host, strings.Join(argv, " "), err, tail("output", out))
	}
	return out, nil
}

// command builds an exec.Cmd that runs argv in the host's network namespace.
func (l *Lab) command(ctx context.Context, host string, argv []string) (*exec.Cmd, error) {
	if _, err := l.host(host); err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("lab %s: exec on %s: empty command", l.cfg.Name, host)
	}
	nsenter, err := lookBin("nsenter")
	if err != nil {
		return nil, fmt.Errorf("lab %s: exec on %s: %w", l.cfg.Name, host, err)
	}
	cmd := exec.CommandContext(ctx, nsenter, append([]string{"--net=" + l.NetnsPath(host), "--"}, argv...)...)
	cmd.WaitDelay = 2 * time.Second
	return cmd, nil
}

// logTail returns the last lines of the role's log, formatted for an error message.
func (l *Lab) logTail(host string, role Role) string {
	path := l.LogPath(host, role)
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("\n(no log %s: %v)", path, err)
	}
	return tail("log "+path, b)
}

// tail formats the last 2 KiB (at most 25 lines) of b.
func tail(what string, b []byte) string {
	const maxBytes, maxLines = 2048, 25
	if len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return fmt.Sprintf("\n(%s is empty)", what)
	}
	return fmt.Sprintf("\n--- tail of %s:\n%s", what, strings.Join(lines, "\n"))
}

// lookBin finds an executable on PATH or in the sbin directories that a non-login root PATH
// may lack.
func lookBin(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %s not found on PATH or in /usr/sbin, /sbin, /usr/bin", name)
}

func readPidFile(path string) (pid int, start uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("pid file %s: want \"PID STARTTIME\", got %q", path, b)
	}
	if pid, err = strconv.Atoi(f[0]); err != nil {
		return 0, 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	if start, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	return pid, start, nil
}
