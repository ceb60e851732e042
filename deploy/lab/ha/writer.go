package ha

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
)

// StallThreshold is the gap between two completed writes that counts as an outage: the
// writer completes a small file every few milliseconds while the master serves.
const StallThreshold = 200 * time.Millisecond

// WriterContent is the content labwriter writes to the file name (and verify expects).
func WriterContent(name string) []byte {
	line := name + " written by the lab's continuous writer\n"
	return bytes.Repeat([]byte(line), 4)
}

var (
	writerOnce sync.Once
	writerPath string
	writerErr  error
)

// writerBin builds labwriter once per process.
func writerBin() (string, error) {
	writerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "labwriter-")
		if err != nil {
			writerErr = err
			return
		}
		writerPath = filepath.Join(dir, "labwriter")
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		if out, err := exec.Command(goBin, "build", "-o", writerPath, "github.com/mfsha/mfsha/deploy/lab/ha/labwriter").CombinedOutput(); err != nil {
			writerErr = fmt.Errorf("go build labwriter: %v\n%s", err, out)
		}
	})
	return writerPath, writerErr
}

// Writer is a client writing small files without pause through a host's mount (labwriter in
// the host's network namespace): a file counts as acknowledged once its close returned.
type Writer struct {
	host, dir string
	cmd       *exec.Cmd
	start     time.Time
	done      chan struct{} // closed when the reader of its output has ended

	mu    sync.Mutex
	acked []string
	times []time.Time // when each acked file's close returned
	fails []string    // "NAME at TIME: ERROR", the first few
	nfail int
}

// StartWriter starts a Writer on host, writing into dir (relative to the root of the file
// system) through the host's mount (lab.Mount).
func StartWriter(ctx context.Context, l *lab.Lab, host, dir string) (*Writer, error) {
	if !l.Has(host) {
		return nil, fmt.Errorf("lab %s: writer on %s: %w", l.Name(), host, lab.ErrUnknownHost)
	}
	bin, err := writerBin()
	if err != nil {
		return nil, err
	}
	abs := filepath.Join(l.MountPoint(host), dir)
	cmd := exec.Command("nsenter", "--net="+l.NetnsPath(host), "--", bin, "write", abs)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	w := &Writer{host: host, dir: dir, cmd: cmd, start: time.Now(), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab %s: writer on %s: %w", l.Name(), host, err)
	}
	go w.read(stdout)
	// Started once the first file is acknowledged: the mount works.
	for {
		w.mu.Lock()
		n := len(w.acked)
		w.mu.Unlock()
		if n > 0 {
			return w, nil
		}
		select {
		case <-w.done:
			cmd.Wait()
			return nil, fmt.Errorf("lab %s: writer on %s ended before its first file: %s", l.Name(), host, stderr.String())
		case <-ctx.Done():
			w.Stop()
			return nil, fmt.Errorf("lab %s: writer on %s: no file acknowledged: %w", l.Name(), host, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (w *Writer) read(r interface{ Read([]byte) (int, error) }) {
	defer close(w.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		if len(f) < 3 {
			continue
		}
		ns, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, ns)
		w.mu.Lock()
		switch f[0] {
		case "ack":
			w.acked = append(w.acked, f[1])
			w.times = append(w.times, at)
		case "fail":
			if w.nfail++; len(w.fails) < 5 && len(f) == 4 {
				w.fails = append(w.fails, fmt.Sprintf("%s at %s: %s", f[1], at.Format("15:04:05.000"), f[3]))
			}
		}
		w.mu.Unlock()
	}
}

// Acked is how many files have been acknowledged so far.
func (w *Writer) Acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// WriterKillWait bounds how long Stop waits for the writer to exit after SIGKILL. A process
// stuck in the kernel (a close() whose FUSE request the master never answers) dies only when
// that request ends; waiting for it without a limit once took a test's whole context, and the
// next step failed with a misleading "context deadline exceeded".
var WriterKillWait = 30 * time.Second

// Stop kills the writer (a write in flight is not acknowledged) and returns what it did. It
// waits at most WriterKillWait for the writer to exit; a writer still there then is reported
// as Stuck (see WriterResult.Err) and reaped in the background whenever it exits.
func (w *Writer) Stop() WriterResult {
	if w.cmd.Process != nil {
		syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	}
	end := time.Now()
	t := time.NewTimer(WriterKillWait)
	defer t.Stop()
	stuck := false
	select {
	case <-w.done:
		w.cmd.Wait()
	case <-t.C:
		stuck = true
		go func() { <-w.done; w.cmd.Wait() }()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return WriterResult{Host: w.host, Dir: w.dir, Start: w.start, End: end, Acked: slices.Clone(w.acked), Times: slices.Clone(w.times),
		Failures: w.nfail, FirstFailures: slices.Clone(w.fails), KillWait: time.Since(end), Stuck: stuck}
}

// WriterResult is what a Writer did: the acknowledged files and when each close returned.
type WriterResult struct {
	Host, Dir     string
	Start, End    time.Time
	Acked         []string
	Times         []time.Time
	Failures      int      // writes that returned an error (not acknowledged)
	FirstFailures []string // the first few of them
	// KillWait is how long the writer took to exit after SIGKILL: long when its write in
	// flight was stuck in the kernel (a FUSE request the master does not answer). With Stuck,
	// how long Stop waited before giving up.
	KillWait time.Duration
	// Stuck: the writer had not exited WriterKillWait after SIGKILL. Acked is complete (a
	// killed writer acknowledges nothing more), the write in flight never returned.
	Stuck bool
}

// Err reports a writer that was stuck at its stop, and for how long it had completed nothing;
// nil otherwise. Verify still reads back what it acknowledged (through another host's fresh
// mount).
func (r WriterResult) Err() error {
	if !r.Stuck {
		return nil
	}
	last := "no write completed"
	if n := len(r.Times); n > 0 {
		last = fmt.Sprintf("its last write completed %v before the kill", r.End.Sub(r.Times[n-1]).Round(time.Millisecond))
	}
	return fmt.Errorf("the writer on %s is stuck in a write: still there %v after SIGKILL (%s)", r.Host, r.KillWait.Round(time.Millisecond), last)
}

// Stalls is how a continuous writer felt an interval: its longest gap between completed
// writes, the sum of the gaps above StallThreshold and how many there were.
type Stalls struct {
	From    time.Time
	Window  time.Duration
	Longest time.Duration
	Blocked time.Duration
	Outages int
	Writes  int // writes completed in the window
}

func (s Stalls) String() string {
	return fmt.Sprintf("longest gap %v, blocked %v in %d outage(s) (gaps > %v), %d writes completed in the %v after",
		s.Longest.Round(time.Millisecond), s.Blocked.Round(time.Millisecond), s.Outages, StallThreshold, s.Writes, s.Window.Round(time.Millisecond))
}

// Stalls measures the window of the given length starting at from (e.g. the instant of a
// fault), cut short at the writer's end: the gaps between the last completion at or before
// from, each completion in the window, and the window's end.
func (r WriterResult) Stalls(from time.Time, window time.Duration) Stalls {
	s := Stalls{From: from, Window: window}
	end := from.Add(window)
	if r.End.Before(end) {
		end = r.End
		s.Window = end.Sub(from)
	}
	prev := from
	for _, t := range r.Times {
		if !t.After(from) {
			prev = t
			continue
		}
		if t.After(end) {
			break
		}
		s.add(t.Sub(prev))
		s.Writes++
		prev = t
	}
	s.add(end.Sub(prev))
	return s
}

func (s *Stalls) add(gap time.Duration) {
	s.Longest = max(s.Longest, gap)
	if gap > StallThreshold {
		s.Blocked += gap
		s.Outages++
	}
}

// Verify reads back every acknowledged file through a fresh mount on host (a new mfsmount:
// nothing cached from the writer's) and checks its content; host must have no mount running.
// It unmounts when done.
func (r WriterResult) Verify(ctx context.Context, l *lab.Lab, host string) error {
	_, err := r.VerifyLost(ctx, l, host, nil)
	return err
}

// VerifyLost is Verify where a file whose acknowledgment time mayLose accepts may be wrong:
// it returns those files' names, and an error for any other wrong file.
func (r WriterResult) VerifyLost(ctx context.Context, l *lab.Lab, host string, mayLose func(acked time.Time) bool) ([]string, error) {
	if len(r.Acked) == 0 {
		return nil, errors.New("the writer acknowledged no file")
	}
	bin, err := writerBin()
	if err != nil {
		return nil, err
	}
	mnt, err := l.Mount(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("fresh mount for the read-back: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		l.Unmount(uctx, host)
	}()
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+l.NetnsPath(host), "--", bin, "verify", filepath.Join(mnt, r.Dir))
	cmd.WaitDelay = 2 * time.Second
	cmd.Stdin = strings.NewReader(strings.Join(r.Acked, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if !strings.Contains(string(out), fmt.Sprintf("checked %d bad ", len(r.Acked))) {
		return nil, fmt.Errorf("read-back of %d acknowledged files through a fresh mount on %s: %v\n%s", len(r.Acked), host, err, firstLines(out, 20))
	}
	lost, wrong := r.sortBad(out, mayLose)
	if len(wrong) > 0 {
		return lost, fmt.Errorf("read-back of %d acknowledged files through a fresh mount on %s: %d wrong outside what the fault may take back:\n%s",
			len(r.Acked), host, len(wrong), firstLines([]byte(strings.Join(wrong, "\n")), 20))
	}
	if err != nil && len(lost) == 0 {
		return lost, fmt.Errorf("read-back of %d acknowledged files through a fresh mount on %s: %v\n%s", len(r.Acked), host, err, firstLines(out, 20))
	}
	return lost, nil
}

// sortBad sorts the "bad NAME REASON" lines of labwriter verify's output: the names of the
// files mayLose accepts, and the other lines.
func (r WriterResult) sortBad(out []byte, mayLose func(acked time.Time) bool) (lost, wrong []string) {
	acked := make(map[string]time.Time, len(r.Acked))
	for i, name := range r.Acked {
		acked[name] = r.Times[i]
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "bad" {
			continue
		}
		t, ok := acked[f[1]]
		switch {
		case ok && mayLose != nil && mayLose(t):
			lost = append(lost, f[1])
		case ok:
			wrong = append(wrong, line+" (acknowledged at "+t.UTC().Format("15:04:05.000")+")")
		default:
			wrong = append(wrong, line)
		}
	}
	return lost, wrong
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines[n] = "..."
	}
	return strings.Join(lines, "\n")
}
