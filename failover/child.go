package failover

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

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
