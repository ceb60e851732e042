package ha

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStalls: the gaps counted are those from the last completion at or before the fault,
// between the completions in the window, and to the window's end (cut at the writer's end).
func TestStalls(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	r := WriterResult{Start: at(0), End: at(10000)}
	for _, ms := range []int{0, 10, 20, 30, 1530, 1540, 1550, 1800, 1810, 4810, 4820} {
		r.Times = append(r.Times, at(ms))
	}
	// Fault at 25 ms, window 5 s: gaps 30-20=10 (from the last completion before the
	// fault), 1500, 10, 10, 250, 10, 3000, 10, then 5025-4820=205 to the window's end.
	s := r.Stalls(at(25), 5*time.Second)
	if s.Longest != 3000*time.Millisecond || s.Outages != 4 || s.Blocked != (1500+250+3000+205)*time.Millisecond || s.Writes != 8 {
		t.Errorf("Stalls = %+v; want longest 3s, 4 outages, blocked 4.955s, 8 writes", s)
	}
	// A window past the writer's end is cut there: 10000-4820 is one more outage.
	s = r.Stalls(at(4815), time.Hour)
	if s.Window != 10000*time.Millisecond-4815*time.Millisecond || s.Longest != 5180*time.Millisecond || s.Outages != 1 || s.Writes != 1 {
		t.Errorf("Stalls past the end = %+v; want the window cut at the end, one 5.18s outage", s)
	}
	// No completion at all after the fault: the whole window is one outage.
	s = WriterResult{Start: at(0), End: at(2000), Times: []time.Time{at(0)}}.Stalls(at(500), time.Second)
	if s.Longest != 1500*time.Millisecond || s.Outages != 1 || s.Writes != 0 {
		t.Errorf("Stalls without completions = %+v; want one 1.5s outage", s)
	}
}

// TestSortBad: a wrong file is excused only when mayLose accepts its acknowledgment time; a
// wrong file the writer never acknowledged, or any wrong file without mayLose, is reported.
func TestSortBad(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := WriterResult{Acked: []string{"w1", "w2", "w3"}, Times: []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second)}}
	out := []byte("bad w2 content \"\", want \"w2...\"\nbad w3 open: no such file\nbad w9 content \"\"\nchecked 3 bad 3\n")
	near := func(acked time.Time) bool { return acked.Equal(t0.Add(time.Second)) }
	lost, wrong := r.sortBad(out, near)
	if len(lost) != 1 || lost[0] != "w2" || len(wrong) != 2 || !strings.HasPrefix(wrong[0], "bad w3 ") || !strings.HasPrefix(wrong[1], "bad w9 ") {
		t.Fatalf("lost %q, wrong %q; want lost [w2], wrong the lines of w3 and w9", lost, wrong)
	}
	if lost, wrong := r.sortBad(out, nil); len(lost) != 0 || len(wrong) != 3 {
		t.Fatalf("without mayLose: lost %q, wrong %q; want every bad line wrong", lost, wrong)
	}
}

// TestStopStuckWriter: a writer that does not go away after SIGKILL (here a process outside its
// group keeps its stdout open, as a write stuck in the kernel keeps the writer) is given up on
// after WriterKillWait and reported as stuck, with what it acknowledged.
func TestStopStuckWriter(t *testing.T) {
	defer func(d time.Duration) { WriterKillWait = d }(WriterKillWait)
	WriterKillWait = 300 * time.Millisecond
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command("sh", "-c", `setsid sh -c 'echo $$ > `+pidFile+`; exec sleep 60' & echo "ack w1 $(date +%s%N)"; exec sleep 60`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &Writer{host: "cl", dir: "writer", cmd: cmd, start: time.Now(), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go w.read(stdout)
	defer func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		<-w.done
	}()
	for w.Acked() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	began := time.Now()
	r := w.Stop()
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Stop took %v with WriterKillWait %v", took, WriterKillWait)
	}
	if !r.Stuck || r.KillWait < WriterKillWait || len(r.Acked) != 1 {
		t.Fatalf("Stop = stuck %v, kill wait %v, acked %v; want stuck after %v, 1 acked", r.Stuck, r.KillWait, r.Acked, WriterKillWait)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "stuck in a write: still there") {
		t.Fatalf("Err() = %v", err)
	}
	// A writer that exits: not stuck.
	cmd = exec.Command("sh", "-c", `echo "ack w1 $(date +%s%N)"; exec sleep 60`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if stdout, err = cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	w2 := &Writer{host: "cl", dir: "writer", cmd: cmd, start: time.Now(), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go w2.read(stdout)
	for w2.Acked() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if r := w2.Stop(); r.Stuck || r.Err() != nil || len(r.Acked) != 1 {
		t.Fatalf("Stop of an exiting writer = %+v, %v", r, r.Err())
	}
}
