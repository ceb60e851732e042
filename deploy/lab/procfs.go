package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procStat is what the lab needs from /proc/PID/stat.
type procStat struct {
	state byte   // R, S, D, Z, X...
	ppid  int    // parent
	pgrp  int    // process group
	start uint64 // start time in clock ticks after boot; with the pid, identifies a process
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// "pid (comm) state ppid pgrp ..." where comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[2] field 5 (pgrp), f[19] field 22
	// (starttime).
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields after comm", pid, len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: ppid: %w", pid, err)
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: pgrp: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: starttime: %w", pid, err)
	}
	return procStat{state: f[0][0], ppid: ppid, pgrp: pgrp, start: start}, nil
}

// ParentPid is the parent of process pid (/proc/PID/stat).
func ParentPid(pid int) (int, error) {
	st, err := readProcStat(pid)
	return st.ppid, err
}

// alive reports whether the process pid that started at start still runs (a zombie does not).
func alive(pid int, start uint64) bool {
	st, err := readProcStat(pid)
	return err == nil && st.start == start && st.state != 'Z' && st.state != 'X'
}

// pids lists the numeric entries of /proc but our own process.
func pids() []int {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && pid != self {
			out = append(out, pid)
		}
	}
	return out
}

// groupMembers lists the live processes of process group pgrp.
func groupMembers(pgrp int) []int {
	var out []int
	for _, pid := range pids() {
		if st, err := readProcStat(pid); err == nil && st.pgrp == pgrp && st.state != 'Z' && st.state != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// poll calls done every few milliseconds until it returns true or ctx ends.
func poll(ctx context.Context, done func() bool) error {
	for delay := 5 * time.Millisecond; !done(); delay = min(delay*2, 100*time.Millisecond) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
	return nil
}

func waitGone(ctx context.Context, pid int, start uint64) error {
	return poll(ctx, func() bool { return !alive(pid, start) })
}

func waitGroupGone(ctx context.Context, pgrp int) error {
	return poll(ctx, func() bool { return len(groupMembers(pgrp)) == 0 })
}

// netnsInode returns the inode of the namespace bound at path.
func netnsInode(path string) (uint64, bool) {
	if !isNetns(path) {
		return 0, false
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, false
	}
	return st.Ino, true
}

// inNetnsPids lists the processes (but ours) whose network namespace is one of inodes.
func inNetnsPids(inodes map[uint64]bool) []int {
	var out []int
	for _, pid := range pids() {
		link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
		if err != nil {
			continue
		}
		s, ok := strings.CutPrefix(link, "net:[")
		if !ok {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
		if err == nil && inodes[ino] {
			if st, err := readProcStat(pid); err == nil && st.state != 'Z' && st.state != 'X' {
				out = append(out, pid)
			}
		}
	}
	return out
}

// killInNetns SIGKILLs every process in the namespaces bound at paths until none is left
// (processes may fork meanwhile), for at most 15 seconds.
func killInNetns(ctx context.Context, paths []string) error {
	inodes := map[uint64]bool{}
	for _, p := range paths {
		if ino, ok := netnsInode(p); ok {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var left []int
	err := poll(ctx, func() bool {
		left = inNetnsPids(inodes)
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		return len(left) == 0
	})
	if err != nil {
		return fmt.Errorf("kill processes in %s: still alive %v: %w", strings.Join(paths, " "), left, err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temp file: write, fsync, rename, fsync dir.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: sync dir: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %s: sync dir: %w", path, err)
	}
	return nil
}
