package failover

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
	"testing"
	"time"

	"github.com/mfsha/mfsha/internal/mfstest"
)

// masterEnv is a MooseFS master's config and empty DATA_PATH on 127.0.0.1, on free ports, so
// that tests run in parallel with each other and with whatever else runs on the machine.
type masterEnv struct {
	config, data string
	clientAddr   string
}

// requireMooseFS fails (never skips) a test that cannot run the real mfsmaster.
func requireMooseFS(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the real mfsmaster (WORKING_USER = root): it needs root")
	}
	mfstest.Dist(t)
}

func newMasterEnv(t *testing.T) *masterEnv {
	t.Helper()
	requireMooseFS(t)
	dir := t.TempDir()
	e := &masterEnv{config: filepath.Join(dir, "mfsmaster.cfg"), data: filepath.Join(dir, "data")}
	// Runs after every later cleanup, before the directory goes: nothing may keep using it.
	t.Cleanup(func() { killLockHolders(t, e.data) })
	if err := os.Mkdir(e.data, 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(e.data, "metadata.mfs"), []byte("MFSM NEW"), 0o644))
	exports := filepath.Join(dir, "mfsexports.cfg")
	must(t, os.WriteFile(exports, []byte("* / rw,alldirs,admin,maproot=0:0\n"), 0o644))
	ports := freePorts(t, 3)
	e.clientAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	cfg := fmt.Sprintf(`# test master
WORKING_USER = root
WORKING_GROUP = root
DATA_PATH = %s
EXPORTS_FILENAME = %s
NICE_LEVEL = 0
LOCK_MEMORY = 0
MATOCL_LISTEN_HOST = 127.0.0.1
MATOCL_LISTEN_PORT = %d
MATOML_LISTEN_HOST = 127.0.0.1
MATOML_LISTEN_PORT = %d
MATOCS_LISTEN_HOST = 127.0.0.1
MATOCS_LISTEN_PORT = %d
`, e.data, exports, ports[0], ports[1], ports[2])
	must(t, os.WriteFile(e.config, []byte(cfg), 0o644))
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// freePorts returns n TCP ports of 127.0.0.1 that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out
}

// killLockHolders SIGKILLs whatever holds the MooseFS lock files of data and waits until the
// locks are free.
func killLockHolders(t *testing.T, data string) {
	deadline := time.Now().Add(10 * time.Second)
	for _, name := range []string{masterLockFile, writerLockFile} {
		for {
			pid, err := lockOwner(filepath.Join(data, name))
			if err != nil || pid == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: still locked by pid %d", name, pid)
				break
			}
			if pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// testLog collects a test's log; it shows it when the test fails or runs with -v.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTestLog(t *testing.T) (*slog.Logger, *testLog) {
	l := &testLog{}
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("log:\n%s", l)
		}
	})
	return slog.New(slog.NewTextHandler(l, nil)), l
}

// newTestMaster returns a Master of env's config whose child is killed when the test ends.
func newTestMaster(t *testing.T, env *masterEnv, stopTimeout time.Duration) (*Master, *testLog) {
	t.Helper()
	log, buf := newTestLog(t)
	m, err := NewMaster(MasterConfig{Bin: mfstest.Dist(t).Path("mfsmaster"), Config: env.config, StopTimeout: stopTimeout}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Kill(); err != nil {
			t.Error(err)
		}
	})
	return m, buf
}

// startForeign runs mfsmaster on env as the test's own child, not through a Master, and waits
// until it answers. done is closed once it has exited and been reaped.
func startForeign(t *testing.T, env *masterEnv) (cmd *exec.Cmd, done <-chan struct{}) {
	t.Helper()
	return startBin(t, env, mfstest.Dist(t).Path("mfsmaster"))
}

// startBin is startForeign with the mfsmaster binary given.
func startBin(t *testing.T, env *masterEnv, bin string) (cmd *exec.Cmd, done <-chan struct{}) {
	t.Helper()
	cmd = exec.Command(bin, "-f", "-c", env.config)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	go func() {
		cmd.Wait()
		close(ch)
	}()
	t.Cleanup(func() {
		if err := killGroup(cmd.Process.Pid); err != nil {
			t.Error(err)
		}
		<-ch
	})
	waitServing(t, env.clientAddr, ch)
	return cmd, ch
}

// waitServing polls the master at addr until it answers, for at most 30 s.
func waitServing(t *testing.T, addr string, exited <-chan struct{}) uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		v, err := Probe(ctx, nil, addr)
		cancel()
		if err == nil {
			return v
		}
		select {
		case <-exited:
			t.Fatalf("mfsmaster exited before answering on %s: %v", addr, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mfsmaster not answering on %s after 30 s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metadataVersion reads the version in the header of DATA_PATH/metadata.mfs.
func metadataVersion(t *testing.T, data string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "metadata.mfs"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 16 || string(b[:8]) != "MFSM 2.0" {
		t.Fatalf("metadata.mfs: header %q, want MFSM 2.0 and a version", b[:min(len(b), 16)])
	}
	return binary.BigEndian.Uint64(b[8:16])
}

// checkAllGone fails the test if a process of group pgid lives or data's locks are held.
func checkAllGone(t *testing.T, pgid int, data string) {
	t.Helper()
	if ms := groupMembers(pgid); len(ms) > 0 {
		t.Errorf("process group %d still has %v", pgid, ms)
	}
	for _, name := range []string{masterLockFile, writerLockFile} {
		if pid, err := lockOwner(filepath.Join(data, name)); err != nil || pid != 0 {
			t.Errorf("%s: held by %d (%v), want free", name, pid, err)
		}
	}
}

func waitClosed(t *testing.T, what string, c <-chan struct{}, limit time.Duration) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(limit):
		t.Fatalf("%s: not within %v", what, limit)
	}
}

// TestMasterStartStop: Start returns once the master answers; a second Start, and a second
// Master on the same data, refuse; a clean Stop (concurrent with another Stop and with Exited
// watchers) writes metadata.mfs; a restart serves the version written.
func TestMasterStartStop(t *testing.T) {
	t.Parallel()
	env := newMasterEnv(t)
	m, log := newTestMaster(t, env, 30*time.Second)
	if m.Exited() != nil || m.Pid() != 0 || m.Running() {
		t.Fatalf("before Start: Exited %v, Pid %d, Running %v; want nil, 0, false", m.Exited(), m.Pid(), m.Running())
	}
	if got, want := m.ProbeAddr(), env.clientAddr; got != want {
		t.Fatalf("ProbeAddr() = %s, want %s", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	start := time.Now()
	v0, err := m.Start(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("start to first answer: %v", time.Since(start).Round(time.Millisecond))
	pid := m.Pid()
	if pid == 0 || !m.Running() {
		t.Fatalf("after Start: Pid %d, Running %v", pid, m.Running())
	}
	v1, err := Probe(ctx, nil, m.ProbeAddr())
	if err != nil || v1 < 1 || v1 < v0 {
		t.Fatalf("Probe after Start: version %d, %v; want >= 1 and >= %d from Start", v1, err, v0)
	}
	if _, err := m.Start(ctx, false); !errors.Is(err, ErrMasterRunning) {
		t.Errorf("second Start: %v, want ErrMasterRunning", err)
	}
	m2, _ := newTestMaster(t, env, time.Second)
	if _, err := m2.Start(ctx, false); !errors.Is(err, ErrDataLocked) || !strings.Contains(err.Error(), strconv.Itoa(pid)) {
		t.Errorf("Start of a second Master on the same data: %v, want ErrDataLocked naming pid %d", err, pid)
	}
	if m2.Running() || m2.Exited() != nil {
		t.Errorf("second Master: Running %v, Exited %v after a refused Start", m2.Running(), m2.Exited())
	}
	for _, want := range []string{"lockfile created and locked", "mfsmaster=" + strconv.Itoa(pid)} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}

	exited := m.Exited()
	var wg sync.WaitGroup
	watchers := make(chan bool, 3)
	for range 3 {
		wg.Go(func() {
			<-exited
			watchers <- m.Running()
		})
	}
	start = time.Now()
	results := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			clean, err := m.Stop(ctx, 0)
			if err == nil && !clean {
				err = errors.New("not clean")
			}
			results <- err
		})
	}
	wg.Wait()
	t.Logf("clean stop: %v", time.Since(start).Round(time.Millisecond))
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
	for range 3 {
		if <-watchers {
			t.Error("Running() is true once Exited is closed")
		}
	}
	if m.Pid() != 0 || m.Running() {
		t.Errorf("after Stop: Pid %d, Running %v", m.Pid(), m.Running())
	}
	checkAllGone(t, pid, env.data)
	v2 := metadataVersion(t, env.data)
	if v2 < v1 {
		t.Errorf("metadata.mfs has version %d, the master served %d", v2, v1)
	}
	if clean, err := m.Stop(ctx, 0); !clean || err != nil {
		t.Errorf("Stop again: %v, %v; want true, nil", clean, err)
	}

	if v, err := m.Start(ctx, false); err != nil || v != v2 {
		t.Fatalf("restart: version %d, %v; want %d from metadata.mfs", v, err, v2)
	}
	pid = m.Pid()
	must(t, m.Kill())
	checkAllGone(t, pid, env.data)
	if clean, err := m.Stop(ctx, 0); clean || err != nil {
		t.Errorf("Stop after Kill: %v, %v; want false, nil", clean, err)
	}
}

// TestMasterKilledFromOutside: Exited closes promptly when the child is SIGKILLed by someone
// else; a Start that fails (no metadata.mfs after a crash) reports the master's last lines;
// with autoRestore (-a) it starts from the changelog, at the version it had.
func TestMasterKilledFromOutside(t *testing.T) {
	t.Parallel()
	env := newMasterEnv(t)
	m, _ := newTestMaster(t, env, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v1, err := m.Start(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	pid := m.Pid()
	killed := time.Now()
	must(t, syscall.Kill(pid, syscall.SIGKILL))
	waitClosed(t, "Exited after SIGKILL", m.Exited(), 2*time.Second)
	t.Logf("Exited closed %v after SIGKILL", time.Since(killed).Round(time.Millisecond))
	if m.Running() || m.Pid() != 0 {
		t.Errorf("after SIGKILL: Running %v, Pid %d", m.Running(), m.Pid())
	}
	if clean, err := m.Stop(ctx, 0); clean || err != nil {
		t.Errorf("Stop: %v, %v; want false, nil", clean, err)
	}
	checkAllGone(t, pid, env.data)

	_, err = m.Start(ctx, false)
	if err == nil {
		t.Fatal("Start without metadata.mfs: no error")
	}
	if !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "try using option '-a'") {
		t.Errorf("Start without metadata.mfs: %v; want it to say the master exited, with its output", err)
	}
	t.Logf("Start without metadata.mfs: %v", err)
	start := time.Now()
	if v, err := m.Start(ctx, true); err != nil || v != v1 {
		t.Fatalf("Start with -a: version %d, %v; want %d", v, err, v1)
	}
	t.Logf("start with -a to first answer: %v", time.Since(start).Round(time.Millisecond))
}

// TestMasterStopTimeoutKills: a master that does not stop within StopTimeout is killed with
// its whole group, and the stop is not clean.
func TestMasterStopTimeoutKills(t *testing.T) {
	t.Parallel()
	env := newMasterEnv(t)
	m, _ := newTestMaster(t, env, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := m.Start(ctx, false); err != nil {
		t.Fatal(err)
	}
	pid := m.Pid()
	must(t, syscall.Kill(pid, syscall.SIGSTOP))
	start := time.Now()
	clean, err := m.Stop(ctx, 0)
	took := time.Since(start)
	if clean || err != nil {
		t.Errorf("Stop of a stopped process: %v, %v; want false, nil", clean, err)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("Stop took %v, want StopTimeout (300ms) and a little", took)
	}
	if !closed(m.Exited()) || m.Running() {
		t.Error("after Stop: still running")
	}
	checkAllGone(t, pid, env.data)
	if _, err := os.Stat(filepath.Join(env.data, "metadata.mfs")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("metadata.mfs after a killed master: %v, want none", err)
	}
}

// TestMasterStartCanceled: when ctx ends before the master answers, Start kills it.
func TestMasterStartCanceled(t *testing.T) {
	t.Parallel()
	env := newMasterEnv(t)
	m, _ := newTestMaster(t, env, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := m.Start(ctx, false)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start with 100ms: %v, want context.DeadlineExceeded", err)
	}
	if m.Running() || !closed(m.Exited()) {
		t.Error("after a canceled Start: still running")
	}
	t.Logf("canceled Start: %v", err)
	checkAllGone(t, m.current().pid, env.data)
}

// TestMasterStopForeign: a master this Master did not start blocks Start and is stopped
// cleanly by StopForeign; this Master's own child is not foreign.
func TestMasterStopForeign(t *testing.T) {
	t.Parallel()
	env := newMasterEnv(t)
	m, _ := newTestMaster(t, env, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if found, err := m.StopForeign(ctx); found || err != nil {
		t.Fatalf("StopForeign with nothing running: %v, %v; want false, nil", found, err)
	}
	cmd, done := startForeign(t, env)
	if _, err := m.Start(ctx, false); !errors.Is(err, ErrDataLocked) {
		t.Fatalf("Start next to a foreign master: %v, want ErrDataLocked", err)
	}
	start := time.Now()
	found, err := m.StopForeign(ctx)
	if !found || err != nil {
		t.Fatalf("StopForeign: %v, %v; want true, nil", found, err)
	}
	t.Logf("StopForeign (clean): %v", time.Since(start).Round(time.Millisecond))
	waitClosed(t, "foreign master's exit", done, 5*time.Second)
	if !cmd.ProcessState.Success() {
		t.Errorf("foreign master: %v, want exit status 0", cmd.ProcessState)
	}
	checkAllGone(t, cmd.Process.Pid, env.data)
	metadataVersion(t, env.data)

	if _, err := m.Start(ctx, false); err != nil {
		t.Fatal(err)
	}
	if found, err := m.StopForeign(ctx); found || err != nil {
		t.Errorf("StopForeign with only its own child running: %v, %v; want false, nil", found, err)
	}
	if !m.Running() {
		t.Error("StopForeign stopped the Master's own child")
	}
}

// TestMasterStopForeignKills: a foreign master that ignores SIGTERM is killed after
// StopTimeout.
func TestMasterStopForeignKills(t *testing.T) {
	t.Parallel()
	env := newMasterEnv(t)
	m, _ := newTestMaster(t, env, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, done := startForeign(t, env)
	must(t, syscall.Kill(cmd.Process.Pid, syscall.SIGSTOP))
	found, err := m.StopForeign(ctx)
	if !found || err != nil {
		t.Fatalf("StopForeign: %v, %v; want true, nil", found, err)
	}
	waitClosed(t, "foreign master's exit", done, 5*time.Second)
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("foreign master: %v, want killed by SIGKILL", cmd.ProcessState)
	}
	checkAllGone(t, cmd.Process.Pid, env.data)
}

// TestNewMasterConfig: DATA_PATH and the client address from mfsmaster.cfg, with MooseFS's
// defaults; errors name the file and the line.
func TestNewMasterConfig(t *testing.T) {
	requireMooseFS(t)
	tests := []struct {
		name, cfg           string
		wantData, wantProbe string
		wantMode            int    // CHANGELOG_SAVE_MODE
		wantErr             string // substring; the file's path is always required too
	}{
		{name: "empty", cfg: "", wantData: "/var/lib/mfs", wantProbe: "127.0.0.1:9421"},
		{name: "comments", cfg: "# DATA_PATH = /x\n   # indented comment\n\nSYSLOG_IDENT=m\n", wantData: "/var/lib/mfs", wantProbe: "127.0.0.1:9421"},
		{name: "set", cfg: "DATA_PATH = /srv/mfs\nMATOCL_LISTEN_HOST = 10.1.2.3\nMATOCL_LISTEN_PORT = 19421\n", wantData: "/srv/mfs", wantProbe: "10.1.2.3:19421"},
		{name: "any address", cfg: "MATOCL_LISTEN_HOST=0.0.0.0\nMATOCL_LISTEN_PORT=9999\n", wantData: "/var/lib/mfs", wantProbe: "127.0.0.1:9999"},
		{name: "last wins", cfg: "DATA_PATH = /a\nDATA_PATH = /b\r\n", wantData: "/b", wantProbe: "127.0.0.1:9421"},
		{name: "deprecated names", cfg: "MATOCU_LISTEN_PORT = 7777\n", wantData: "/var/lib/mfs", wantProbe: "127.0.0.1:7777"},
		{name: "deprecated names ignored", cfg: "MATOCU_LISTEN_PORT = 7777\nMATOCL_LISTEN_HOST = 10.0.0.1\n", wantData: "/var/lib/mfs", wantProbe: "10.0.0.1:9421"},
		{name: "no equals", cfg: "DATA_PATH = /a\n\nDATA_PATH /b\n", wantErr: "line 3: want KEY = value"},
		{name: "two words", cfg: "DATA PATH = /b\n", wantErr: "line 1: want KEY = value"},
		{name: "bad port", cfg: "# c\nMATOCL_LISTEN_PORT = http\n", wantErr: "line 2: MATOCL_LISTEN_PORT = http"},
		{name: "port range", cfg: "MATOCL_LISTEN_PORT = 70000\n", wantErr: "line 1: MATOCL_LISTEN_PORT = 70000"},
		{name: "relative", cfg: "\nDATA_PATH = var/mfs\n", wantErr: "line 2: DATA_PATH = var/mfs: want an absolute path"},
		{name: "inline comment", cfg: "DATA_PATH = /a # data\n", wantErr: "line 1: DATA_PATH"},
		{name: "empty value", cfg: "DATA_PATH =\n", wantErr: "line 1: DATA_PATH is empty"},
		{name: "save mode", cfg: "CHANGELOG_SAVE_MODE = 1\n", wantData: "/var/lib/mfs", wantProbe: "127.0.0.1:9421", wantMode: 1},
		{name: "save mode sync", cfg: "CHANGELOG_SAVE_MODE=2\n", wantData: "/var/lib/mfs", wantProbe: "127.0.0.1:9421", wantMode: 2},
		{name: "bad save mode", cfg: "\nCHANGELOG_SAVE_MODE = 3\n", wantErr: "line 2: CHANGELOG_SAVE_MODE = 3: want 0, 1 or 2"},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("%d.cfg", i))
			must(t, os.WriteFile(path, []byte(tt.cfg), 0o644))
			m, err := NewMaster(MasterConfig{Config: path}, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), path+" "+tt.wantErr) {
					t.Fatalf("NewMaster: %v, want an error with %q", err, path+" "+tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := m.DataPath(), tt.wantData; got != want {
				t.Errorf("DataPath() = %s, want %s", got, want)
			}
			if got, want := m.ProbeAddr(), tt.wantProbe; got != want {
				t.Errorf("ProbeAddr() = %s, want %s", got, want)
			}
			if got, want := m.ChangelogSaveMode(), tt.wantMode; got != want {
				t.Errorf("ChangelogSaveMode() = %d, want %d", got, want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "none.cfg")
		_, err := NewMaster(MasterConfig{Config: path}, nil)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
			t.Errorf("NewMaster: %v, want fs.ErrNotExist naming %s", err, path)
		}
	})
	t.Run("missing binary", func(t *testing.T) {
		path := filepath.Join(dir, "0.cfg")
		_, err := NewMaster(MasterConfig{Bin: "mfsmaster-none", Config: path}, nil)
		if err == nil || !strings.Contains(err.Error(), "mfsmaster-none") {
			t.Errorf("NewMaster: %v, want an error naming mfsmaster-none", err)
		}
	})
}
