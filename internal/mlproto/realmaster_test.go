package mlproto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/moosefs"
)

// TestRealMaster registers with the real mfsmaster of the release under test (MFSHA_MOOSEFS),
// in a network namespace, and checks that the lines received are the master's
// changelog.0.mfs byte for byte: lines sent live, lines the master resends from memory to a
// receiver that asks for an older version, and lines after a kill -9 and restart of the
// master, which the receiver follows by reconnecting. A receiver asking the restarted master
// for lines it no longer holds gets a *GapError.
func TestRealMaster(t *testing.T) {
	mfs := mfstest.RequireMooseFS(t)
	testRealMaster(t, fmt.Sprintf("ml%d", os.Getpid()%100000), mfs)
}

func testRealMaster(t *testing.T, name string, mfs moosefs.Dist) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.New(lab.Config{Name: name, Dir: t.TempDir(),
		Hosts: []lab.HostSpec{{Name: lab.HostMasterA}, {Name: lab.HostClient}}, MooseFS: mfs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	mnt, err := l.StartCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := l.MasterDataDir(lab.HostMasterA)
	addr := netip.AddrPortFrom(l.HostAddr(lab.HostMasterA), lab.PortMasterMeta).String()

	// The receiver runs from the client's host, as a standby would from its own.
	live := startReceiver(t, ctx, Config{Addr: addr, Dial: l.Dialer(lab.HostClient), Timeout: 10 * time.Second})
	waitFor(t, ctx, "the receiver to register", func() bool { return live.r.Status().Connected })

	ops := work(t, mnt, "one")
	if err := os.Mkdir(filepath.Join(mnt, "marker-one"), 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the line of the last operation", func() bool { return live.has("marker-one") })
	logLatency(t, live, ops)
	if got := live.r.Status().MasterVersion; (mfs.Version.Major < 4) != (got == 0) {
		t.Errorf("master version from the acknowledgement: %#x; a 3.x master sends none, a 4.x one does", got)
	}
	checkAgainstFile(t, ctx, live, data, "live lines")

	// A second receiver asks for the master's first line of changelog.0.mfs: the master resends
	// what it holds in memory, then goes on live.
	first := firstVersion(t, data)
	replay := startReceiver(t, ctx, Config{Addr: addr, Dial: l.Dialer(lab.HostClient), Next: first})
	waitFor(t, ctx, "the resent lines", func() bool { return replay.has("marker-one") })
	checkAgainstFile(t, ctx, replay, data, "resent lines")
	if got := replay.lines()[0].Version; got != first {
		t.Fatalf("resent lines start at %d, want %d", got, first)
	}

	// Loopback inside the master's own namespace works too: the metalogger port has no
	// address restriction (only the chunkserver refuses 127.0.0.1).
	lo := startReceiver(t, ctx, Config{Addr: "127.0.0.1:9419", Dial: l.Dialer(lab.HostMasterA)})
	waitFor(t, ctx, "the loopback receiver to register", func() bool { return lo.r.Status().Connected })

	// kill -9 of the master and its data writer, with nothing in flight, then `mfsmaster -a`:
	// the receivers reconnect and ask for the next version, which is the restarted master's.
	before := live.r.Status().Connects
	if err := l.KillProcess(ctx, lab.HostMasterA, lab.RoleMaster); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the receiver to see the master gone", func() bool { return !live.r.Status().Connected })
	if err := l.StartMaster(ctx, lab.HostMasterA, "-a"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the receiver to register again", func() bool {
		s := live.r.Status()
		return s.Connected && s.Connects > before
	})
	waitFor(t, ctx, "the mount to reach the restarted master", func() bool {
		return os.Mkdir(filepath.Join(mnt, "after-restart"), 0o755) == nil
	})
	work(t, mnt, "two")
	if err := os.Mkdir(filepath.Join(mnt, "marker-two"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, rc := range []*receiverRun{live, replay, lo} {
		waitFor(t, ctx, "the lines after the restart", func() bool { return rc.has("marker-two") })
	}
	checkAgainstFile(t, ctx, live, data, "lines across the restart")
	checkAgainstFile(t, ctx, replay, data, "resent lines across the restart")
	checkAgainstFile(t, ctx, lo, data, "loopback lines")
	for _, rc := range []*receiverRun{live, replay, lo} {
		if err := rc.err(); err != nil {
			t.Fatalf("a receiver stopped: %v", err)
		}
	}

	// The restarted master holds no old lines in memory: a receiver asking for its first
	// version gets a later one, reported as a gap, never skipped over.
	gap := startReceiver(t, ctx, Config{Addr: addr, Dial: l.Dialer(lab.HostClient), Next: first})
	// The registration is not acknowledged by 3.x: change something until a line comes.
	n := 0
	waitFor(t, ctx, "the gap to be reported", func() bool {
		n++
		must(t, os.Mkdir(filepath.Join(mnt, fmt.Sprintf("after-gap-%d", n)), 0o755))
		time.Sleep(50 * time.Millisecond)
		return gap.err() != nil
	})
	var ge *GapError
	if err := gap.err(); !errors.As(err, &ge) || ge.Want != first || ge.Got <= first {
		t.Fatalf("receiver asking for %d from a restarted master: %v; want a *GapError from %d", first, err, first)
	}
	if n := len(gap.lines()); n != 0 {
		t.Fatalf("the gapped receiver delivered %d lines; want none", n)
	}
}

// work changes metadata through the mount (no data: no chunkserver runs) and returns, per
// operation, a unique name its line holds and when the operation returned.
func work(t *testing.T, mnt, round string) map[string]time.Time {
	t.Helper()
	ops := map[string]time.Time{}
	dir := filepath.Join(mnt, "dir-"+round)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		name := fmt.Sprintf("f%s%d,(%%)é\t", round, i) // escaped in the changelog
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		ops[escapeName(name)] = time.Now()
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Rename(filepath.Join(dir, fmt.Sprintf("f%s0,(%%)é\t", round)), filepath.Join(dir, "moved:|")))
	must(t, os.Symlink("moved:|", filepath.Join(dir, "sym")))
	must(t, os.Chmod(filepath.Join(dir, "sym"), 0o600))
	must(t, os.Remove(filepath.Join(dir, fmt.Sprintf("f%s1,(%%)é\t", round))))
	return ops
}

// escapeName escapes a name as mfsmaster's changelog_escape_name does.
func escapeName(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c < 32 || c >= 127 || c == ',' || c == '%' || c == '(' || c == ')' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// receiverRun is a Receiver running in its own goroutine, recording what it delivers.
type receiverRun struct {
	r *Receiver

	mu     sync.Mutex
	got    []Line
	at     []time.Time
	runErr error
	done   bool
}

func startReceiver(t *testing.T, ctx context.Context, cfg Config) *receiverRun {
	t.Helper()
	cfg.Log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.RetryDelay = 100 * time.Millisecond
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiverRun{r: r}
	rctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		err := r.Run(rctx, func(_ context.Context, l Line) error {
			rc.mu.Lock()
			defer rc.mu.Unlock()
			rc.got = append(rc.got, l)
			rc.at = append(rc.at, time.Now())
			return nil
		})
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.runErr, rc.done = err, true
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
		if err := rc.err(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrGap) {
			t.Errorf("receiver %s: %v", cfg.Addr, err)
		}
	})
	return rc
}

func (rc *receiverRun) lines() []Line {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

func (rc *receiverRun) has(s string) bool {
	for _, l := range rc.lines() {
		if bytes.Contains(l.Text, []byte(s)) {
			return true
		}
	}
	return false
}

func (rc *receiverRun) err() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.done {
		return nil
	}
	if rc.runErr == nil {
		return errors.New("Run returned nil")
	}
	return rc.runErr
}

// logLatency logs how long after each create returned its line was delivered. It is a
// measurement, not an assertion: the machine is shared.
func logLatency(t *testing.T, rc *receiverRun, ops map[string]time.Time) {
	rc.mu.Lock()
	var lat []time.Duration
	for name, done := range ops {
		for i, l := range rc.got {
			if bytes.Contains(l.Text, []byte("CREATE(")) && bytes.Contains(l.Text, []byte(","+name+",")) {
				lat = append(lat, rc.at[i].Sub(done))
				break
			}
		}
	}
	rc.mu.Unlock()
	if len(lat) != len(ops) {
		t.Fatalf("found the CREATE line of %d of %d creates", len(lat), len(ops))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("line delivered after its create returned (negative: before): min %s, median %s, max %s over %d creates",
		lat[0], lat[len(lat)/2], lat[len(lat)-1], len(lat))
}

// checkAgainstFile waits until the master's changelog files hold the receiver's last line,
// then checks that the receiver's lines are those files byte for byte, from its first line
// to the end.
func checkAgainstFile(t *testing.T, ctx context.Context, rc *receiverRun, dir, what string) {
	t.Helper()
	var got, want []byte
	waitFor(t, ctx, what+" to be in the master's changelog", func() bool {
		lines := rc.lines()
		if len(lines) == 0 {
			return false
		}
		got = got[:0]
		for _, l := range lines {
			got = append(got, l.Text...)
		}
		file := masterChangelog(t, dir)
		at := bytes.Index(file, []byte("\n"+strconv.FormatUint(lines[0].Version, 10)+": "))
		if at < 0 {
			if !bytes.HasPrefix(file, []byte(strconv.FormatUint(lines[0].Version, 10)+": ")) {
				return false
			}
			at = -1
		}
		want = file[at+1:]
		return bytes.Equal(got, want)
	})
	t.Logf("%s: %d lines, %d bytes, equal to the master's changelog", what, bytes.Count(got, []byte("\n")), len(got))
}

// masterChangelog is the master's changelog.N.mfs files, oldest first, whole lines only.
func masterChangelog(t *testing.T, dir string) []byte {
	t.Helper()
	var out []byte
	for n := 9; n >= 0; n-- {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("changelog.%d.mfs", n)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			out = append(out, b[:i+1]...)
		}
	}
	return out
}

func firstVersion(t *testing.T, dir string) uint64 {
	t.Helper()
	b := masterChangelog(t, dir)
	v, err := strconv.ParseUint(string(b[:bytes.IndexByte(b, ':')]), 10, 64)
	if err != nil {
		t.Fatalf("first line of the master's changelog %q: %v", b[:min(len(b), 80)], err)
	}
	return v
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
