package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/internal/jstest"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/signtest"
	"github.com/mfsha/mfsha/internal/stream"
)

// The tests here build the real binary and run it as an operator would: exit statuses, what
// it prints, its metrics endpoint.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mfsha-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mfsha")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the binary to its end and returns its exit status and output.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("mfsha %s: %v", strings.Join(args, " "), err)
	}
	return code, o.String(), e.String()
}

// daemon is the binary running in the background.
type daemon struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan int
}

func start(t *testing.T, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(binary, args...), stderr: &bytes.Buffer{}, done: make(chan int, 1)}
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.cmd.Wait()
		d.done <- d.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
	})
	return d
}

// wait returns the exit status, failing the test if the process runs on.
func (d *daemon) wait(t *testing.T) int {
	t.Helper()
	select {
	case c := <-d.done:
		return c
	case <-time.After(60 * time.Second):
		t.Fatalf("mfsha did not exit; its log:\n%s", d.stderr)
	}
	return 0
}

// lines is a changelog mfsmaster can replay: SETMETAID, then CREATE of file fN as line N.
func lines(from, to int) string {
	var b strings.Builder
	for v := from; v <= to; v++ {
		if v == 1 {
			b.WriteString("1: 1700000000|SETMETAID(77)\n")
			continue
		}
		fmt.Fprintf(&b, "%d: %d|CREATE(1,f%d,1,420,18,0,0,0):%d\n", v, 1700000000+v, v, v)
	}
	return b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// metric reads one metric from a metrics endpoint; ok is false while it is not served.
func metric(addr, name string) (float64, bool) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

func waitMetric(t *testing.T, d *daemon, addr, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if v, ok := metric(addr, name); ok && v == want {
			return
		}
		select {
		case c := <-d.done:
			t.Fatalf("mfsha exited with %d before %s = %v; its log:\n%s", c, name, want, d.stderr)
		default:
		}
		if time.Now().After(deadline) {
			v, _ := metric(addr, name)
			t.Fatalf("%s = %v, want %v; log:\n%s", name, v, want, d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBadFlagsAndSettingsExit2(t *testing.T) {
	keys := signtest.New(t)
	mfsmaster := mfstest.Mfsmaster(t).Path
	masterCfg := filepath.Join(t.TempDir(), "mfsmaster.cfg")
	os.WriteFile(masterCfg, []byte("DATA_PATH = "+t.TempDir()+"\n"), 0o644)
	cfg := filepath.Join(t.TempDir(), "mfsha.cfg")
	os.WriteFile(cfg, []byte("# comment\nDATA_PATHS = /var/lib/mfs\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string // what stderr must name
	}{
		{nil, "Usage"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"ship", "--no-such-flag"}, "no-such-flag"},
		{[]string{"ship", "--config", cfg}, cfg + " line 2"},
		{[]string{"ship", "--cluster", "a.b"}, "CLUSTER"},
		{[]string{"ship", "--log-level", "loud"}, "LOG_LEVEL"},
		{[]string{"ship", "--data", t.TempDir(), "--vip", "10.0.0.100/24", "--mfsmaster-config", masterCfg, "--mfsmaster", mfsmaster,
			"--signing-key", keys.Private, "--trusted-keys", keys.Public}, "NATS_URL and NATS_ROUTES"},
		{[]string{"standby", "--nats", "nats://127.0.0.1:1", "--fold-lines", "0", "--trusted-keys", keys.Public}, "FOLD_LINES"},
		{[]string{"restore", "--to", "yesterday", "--out", t.TempDir()}, "--to"},
		{[]string{"restore", "--version", "5"}, "--out"},
		{[]string{"restore", "--version", "5", "--out", t.TempDir(), "--fold-user", "root"}, "FOLD_USER"},
		{[]string{"restore", "--version", "5", "--out", t.TempDir(), "--mfsmaster", "/nonexistent/mfsmaster"}, "/nonexistent/mfsmaster"},
		{[]string{"restore", "--version", "5", "--out", t.TempDir(), "--mfsmaster", "/bin/true"}, "MFSMASTER_BIN"},
		{[]string{"standby", "--nats", "nats://127.0.0.1:1", "--mfsmaster", "mfsmaster-none", "--trusted-keys", keys.Public}, "mfsmaster-none"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("mfsha %s: exit %d, stderr %q; want exit %d naming %q", strings.Join(tc.args, " "), code, lastLines(stderr), exitUsage, tc.want)
		}
	}
}

func lastLines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-3):], " | ")
}

// TestShipRestoreAndExitStatuses: the binary ships (metrics read from its endpoint), stops
// with 0 on SIGTERM, with 3 on a gap and with 4 when another writer appended; restore --list
// and --dry-run show without writing; restore writes the version asked for.
func TestShipRestoreAndExitStatuses(t *testing.T) {
	js := jstest.Start(t)
	url := js.Conn().ConnectedUrl()
	const cluster = "cmdtest"
	common := []string{"--nats", url, "--cluster", cluster, "--no-snapshots"}
	keys := signtest.New(t)
	shipping := append([]string{"--signing-key", keys.Private}, common...)    // the shipper signs
	reading := append([]string{"--trusted-keys", keys.Public}, common[:4]...) // restore verifies

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "changelog.0.mfs"), []byte(lines(1, 100)), 0o644)
	addr := freePort(t)
	d := start(t, append([]string{"ship", "--data", dir, "--metrics", addr}, shipping...)...)
	waitMetric(t, d, addr, "mfsha_ship_last_version", 100)
	waitMetric(t, d, addr, "mfsha_ship_gap", 0)
	d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(t); code != exitOK {
		t.Fatalf("SIGTERM: exit %d, want 0; log:\n%s", code, d.stderr)
	}

	// --list and --dry-run change nothing.
	out := t.TempDir()
	code, stdout, stderr := run(t, append([]string{"restore", "--list"}, reading...)...)
	if code != 0 || !strings.Contains(stdout, "TIMELINE") || !regexpLine(stdout, `^1\s+-\s+1\s+\S+\s+100\s`) {
		t.Fatalf("restore --list: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, append([]string{"restore", "--dry-run", "--version", "50", "--out", out}, reading...)...)
	if code != 0 || !strings.Contains(stdout, "plan: restore to version 50 from an empty file system (version 1), then changelog lines 1..50 of timeline 1") {
		t.Fatalf("restore --dry-run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("restore --dry-run wrote %v", ents)
	}
	code, _, stderr = run(t, append([]string{"restore", "--version", "500", "--out", out}, reading...)...)
	if code != exitError || !strings.Contains(stderr, "after the newest") || !strings.Contains(stderr, "versions 1..100") {
		t.Fatalf("restore past the newest: exit %d, %s", code, stderr)
	}
	mfstest.RequireMooseFS(t)
	code, stdout, stderr = run(t, append([]string{"restore", "--version", "50", "--out", out, "--mfsmaster", mfstest.Mfsmaster(t).Path}, reading...)...)
	if code != 0 || !strings.Contains(stdout, "version 51 (50 lines applied") {
		t.Fatalf("restore --version 50: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "metadata.mfs")); err != nil {
		t.Fatal(err)
	}

	// A gap: the next files start at 150, the stream needs 101.
	gap := t.TempDir()
	os.WriteFile(filepath.Join(gap, "changelog.0.mfs"), []byte(lines(150, 160)), 0o644)
	code, _, stderr = run(t, append([]string{"ship", "--data", gap, "--metrics", ""}, shipping...)...)
	if code != exitGap || !strings.Contains(stderr, "version 101") {
		t.Fatalf("gap: exit %d, want %d naming version 101; log:\n%s", code, exitGap, stderr)
	}

	// Another writer appends while this one ships.
	d = start(t, append([]string{"ship", "--data", dir, "--metrics", addr}, shipping...)...)
	waitMetric(t, d, addr, "mfsha_ship_last_version", 100)
	publishForeign(t, js, cluster, 101, 105)
	f, _ := os.OpenFile(filepath.Join(dir, "changelog.0.mfs"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(lines(101, 110))
	f.Close()
	if code := d.wait(t); code != exitFenced {
		t.Fatalf("another writer: exit %d, want %d; log:\n%s", code, exitFenced, d.stderr)
	}

	// A last batch whose headers wrap around (First=0, Last=2^64-1, Lines=0): status names it
	// and shows the range before it, and that range stays restorable.
	hdr := stream.BatchInfo{Timeline: 1, FirstVersion: 1, LastVersion: 1, Lines: 1}.Header()
	hdr.Set(stream.HdrFirstVersion, "0")
	hdr.Set(stream.HdrLastVersion, "18446744073709551615")
	hdr.Set(stream.HdrLines, "0")
	ack, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: stream.Subject(cluster, 1), Header: hdr, Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = run(t, append([]string{"status"}, common[:4]...)...)
	if code != 0 || strings.Contains(stdout, "18446744073709551615") || !regexpLine(stdout, `^1\s+-\s+1\s+\S+\s+105\s`) ||
		!strings.Contains(stdout, fmt.Sprintf("stream message %d is unusable", ack.Sequence)) {
		t.Fatalf("status with a bad last batch: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, append([]string{"restore", "--force", "--version", "100", "--out", out, "--mfsmaster", mfstest.Mfsmaster(t).Path}, reading...)...)
	if code != 0 || !strings.Contains(stdout, "version 101 (100 lines applied") {
		t.Fatalf("restore before the bad batch: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// publishForeign appends lines from..to to timeline 1 as another writer would.
func publishForeign(t *testing.T, js jetstream.JetStream, cluster string, from, to int) {
	t.Helper()
	body := []byte(lines(from, to))
	info := stream.BatchInfo{Timeline: 1, FirstVersion: uint64(from), LastVersion: uint64(to), Lines: to - from + 1,
		FirstTime: 1700000000, LastTime: 1700000000, Sum: crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))}
	enc, _ := zstd.NewWriter(nil)
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: stream.Subject(cluster, 1), Header: info.Header(), Data: enc.EncodeAll(body, nil)}); err != nil {
		t.Fatal(err)
	}
}

func regexpLine(text, re string) bool {
	r := regexpMust(re)
	for _, l := range strings.Split(text, "\n") {
		if r.MatchString(l) {
			return true
		}
	}
	return false
}

func regexpMust(re string) *regexp.Regexp { return regexp.MustCompile(re) }
