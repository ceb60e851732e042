package lab

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// HostInterface is the name of every host's network interface (the VIP's, too).
const HostInterface = hostIf

// Procs lists the processes in host's namespace whose command name (/proc/PID/comm) is comm,
// including those the lab did not start (e.g. an mfsmaster run by mfsha).
func (l *Lab) Procs(host, comm string) ([]int, error) {
	if _, err := l.host(host); err != nil {
		return nil, err
	}
	ino, ok := netnsInode(l.NetnsPath(host))
	if !ok {
		return nil, fmt.Errorf("lab %s: %s has no network namespace", l.cfg.Name, host)
	}
	var out []int
	for _, pid := range inNetnsPids(map[uint64]bool{ino: true}) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(b)) == comm {
			out = append(out, pid)
		}
	}
	return out, nil
}

// KillProcs sends SIGKILL to every process named comm in host's namespace and waits until
// they are gone. It returns an error if there was none.
func (l *Lab) KillProcs(ctx context.Context, host, comm string) error {
	pids, err := l.Procs(host, comm)
	if err != nil {
		return err
	}
	if len(pids) == 0 {
		return fmt.Errorf("lab %s: no %s on %s: %w", l.cfg.Name, comm, host, ErrNotRunning)
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return poll(ctx, func() bool {
		left, err := l.Procs(host, comm)
		return err == nil && len(left) == 0
	})
}

// MasterConfig writes host's mfsmaster.cfg (as StartMaster does) and returns its path, for a
// master that something else (mfsha) starts.
func (l *Lab) MasterConfig(host string) (string, error) {
	if _, err := l.host(host); err != nil {
		return "", err
	}
	return l.writeMasterConfig(host)
}
