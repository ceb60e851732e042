package lab

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FoldCost folds n CREATE lines (new files in the root, inodes after the tree's last one) onto
// the metadata file meta with `mfsmaster -a restore`, as a standby's round does, and returns
// its duration and mfsmaster's peak RSS in bytes. version is meta's version, lastInode the
// tree's last inode.
func FoldCost(ctx context.Context, master, meta string, version uint64, lastInode uint32, n int) (time.Duration, int64, error) {
	work, err := os.MkdirTemp(filepath.Dir(meta), ".fold-cost-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(work)
	if err := os.Link(meta, filepath.Join(work, "metadata.mfs")); err != nil {
		return 0, 0, fmt.Errorf("fold cost: %w", err)
	}
	f, err := os.Create(filepath.Join(work, "changelog.0.mfs"))
	if err != nil {
		return 0, 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "%d: 1700000001|CREATE(1,new%d,1,420,18,0,0,0):%d\n", version+uint64(i), i, uint64(lastInode)+1+uint64(i))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, 0, err
	}
	if err := f.Close(); err != nil {
		return 0, 0, err
	}
	cfg, err := writeConfig(work, "")
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, master, "-c", cfg, "-a", "restore")
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("fold cost: %s -a restore: %w\n%s", master, err, out)
	}
	return took, maxRSS(cmd), nil
}

// LoadCost starts mfsmaster serving meta (a copy in a work directory; ports on 127.0.0.1
// only) and returns how long it took until its client port accepted a connection, and its
// peak RSS then (VmHWM). The master is killed afterwards.
func LoadCost(ctx context.Context, master, meta string) (time.Duration, int64, error) {
	work, err := os.MkdirTemp(filepath.Dir(meta), ".load-cost-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(work)
	if err := os.Link(meta, filepath.Join(work, "metadata.mfs")); err != nil {
		return 0, 0, fmt.Errorf("load cost: %w", err)
	}
	return ServeTime(ctx, master, work, false)
}

// ServeTime starts mfsmaster -a on the files in data (metadata and changelogs, as a promotion
// hands them over; ports on 127.0.0.1 only) and returns how long it took until its client
// port accepted a connection, and its peak RSS then (VmHWM). The master is killed afterwards,
// or with save stopped cleanly (SIGTERM: it saves data/metadata.mfs at its version, as a
// later load's input).
func ServeTime(ctx context.Context, master, data string, save bool) (time.Duration, int64, error) {
	ports, err := freePorts(3)
	if err != nil {
		return 0, 0, err
	}
	extra := fmt.Sprintf("MATOML_LISTEN_HOST = 127.0.0.1\nMATOML_LISTEN_PORT = %d\nMATOCS_LISTEN_HOST = 127.0.0.1\nMATOCS_LISTEN_PORT = %d\nMATOCL_LISTEN_HOST = 127.0.0.1\nMATOCL_LISTEN_PORT = %d\n",
		ports[0], ports[1], ports[2])
	cfg, err := writeConfig(data, extra)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, master, "-c", cfg, "-a", "-f", "start")
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		if !save {
			cmd.Process.Kill()
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Minute):
			cmd.Process.Kill()
			<-exited
		}
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		select {
		case <-exited:
			return 0, 0, fmt.Errorf("%s -a on %s exited before serving", master, data)
		case <-time.After(20 * time.Millisecond):
		}
	}
	took := time.Since(start)
	return took, VmHWM(cmd.Process.Pid), nil
}

func writeConfig(data, extra string) (string, error) {
	cfg := filepath.Join(data, "mfsmaster.cfg")
	text := fmt.Sprintf("WORKING_USER = root\nWORKING_GROUP = root\nDATA_PATH = %s\nEXPORTS_FILENAME = %s\nLOCK_FILE = %s\n%s",
		data, filepath.Join(data, "exports"), filepath.Join(data, ".lock"), extra)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return "", err
	}
	return cfg, os.WriteFile(filepath.Join(data, "exports"), []byte("* / rw,alldirs,admin,maproot=0:0\n"), 0o644)
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func maxRSS(cmd *exec.Cmd) int64 {
	if cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10
	}
	return 0
}

// VmHWM returns the peak RSS of a running process, from /proc/PID/status; 0 if unreadable.
func VmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
