package lab

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/mfsha/mfsha/internal/moosefs"
)

// requireLab fails the test, naming what is missing, unless it runs as root with the MooseFS
// binaries and nsenter installed. It never skips.
func requireLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test builds network namespaces and runs the real MooseFS: it needs root (run `make test` as root)")
	}
	for _, b := range []string{"nsenter", "dd", "cat"} {
		if _, err := lookBin(b); err != nil {
			t.Fatalf("%v: run `make deps` (util-linux, coreutils)", err)
		}
	}
	if err := testMooseFS(t).Check(context.Background(), "mfsmaster", "mfsmetalogger", "mfschunkserver", "mfsmount"); err != nil {
		t.Fatalf("%v: run `make deps`", err)
	}
}

// testMooseFS is the release under test, as internal/mfstest chooses it (MFSHA_MOOSEFS,
// default 3.0.117; that package imports this one, so its tests cannot use it).
func testMooseFS(t *testing.T) moosefs.Dist {
	t.Helper()
	d, err := moosefs.DistOf(cmp.Or(os.Getenv("MFSHA_MOOSEFS"), "3.0.117"))
	if err != nil {
		t.Fatalf("MFSHA_MOOSEFS: %v", err)
	}
	return d
}

// labName returns a lab name unique to this test process: "l", 5 hex digits of the pid and a
// suffix letter.
func labName(suffix string) string {
	return fmt.Sprintf("l%05x%s", os.Getpid()&0xfffff, suffix)
}

// newLab creates a lab and registers its teardown and the check that nothing is left.
func newLab(t *testing.T, suffix string, hosts []HostSpec) *Lab {
	t.Helper()
	l, err := New(Config{Name: labName(suffix), Dir: t.TempDir(), Hosts: hosts, StartTimeout: 20 * time.Second, MooseFS: testMooseFS(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.Down(ctx); err != nil {
			t.Errorf("down: %v", err)
		}
		assertNothingLeft(t, l)
	})
	return l
}

func timed(t *testing.T, what string, fn func() error) {
	t.Helper()
	start := time.Now()
	if err := fn(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s took %v", what, time.Since(start).Round(time.Millisecond))
}

func TestClusterWriteReadAndMetalogger(t *testing.T) {
	requireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := newLab(t, "a", DefaultHosts())

	timed(t, "up", func() error { return l.Up(ctx) })
	timed(t, "up again (idempotent)", func() error { return l.Up(ctx) })
	if err := l.InitMaster("ma"); err != nil {
		t.Fatal(err)
	}
	if err := l.AddVIP("ma"); err != nil {
		t.Fatal(err)
	}
	timed(t, "master start on ma", func() error { return l.StartMaster(ctx, "ma") })
	timed(t, "metalogger start on ma", func() error { return l.StartMetalogger(ctx, "ma") })
	// Both chunkservers at once: registration waits for their first space report.
	errc := make(chan error, 2)
	for _, host := range []string{"mb", "c1"} {
		go func() {
			start := time.Now()
			err := l.StartChunkserver(ctx, host)
			t.Logf("chunkserver registration of %s took %v", host, time.Since(start).Round(time.Millisecond))
			errc <- err
		}()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	var mnt string
	timed(t, "mount on cl", func() (err error) { mnt, err = l.Mount(ctx, "cl"); return err })
	if got, want := mnt, l.MountPoint("cl"); got != want {
		t.Errorf("mount point: got %s, want %s", got, want)
	}

	owner, err := l.VIPOwner()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := owner, "ma"; got != want {
		t.Errorf("VIP owner: got %q, want %q", got, want)
	}
	if err := l.AnnounceVIP("ma"); err != nil {
		t.Fatal(err)
	}
	answered, err := l.VIPAnswerers(ctx, "cl")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := answered, []string{"ma"}; !slices.Equal(got, want) {
		t.Errorf("ARP answers for the VIP seen from cl: got %v, want %v", got, want)
	}

	// The metalogger and the chunkservers reach the master through the VIP and from their own
	// address.
	css, err := Chunkservers(ctx, l.Dialer("cl"), l.MasterAddr())
	if err != nil {
		t.Fatal(err)
	}
	var csAddrs []string
	for _, cs := range css {
		if cs.Connected {
			csAddrs = append(csAddrs, cs.Addr.Addr().String())
		}
	}
	slices.Sort(csAddrs)
	wantCS := []string{l.HostAddr("mb").String(), l.HostAddr("c1").String()}
	slices.Sort(wantCS)
	if !slices.Equal(csAddrs, wantCS) {
		t.Errorf("connected chunkservers: got %v, want %v", csAddrs, wantCS)
	}

	info, err := ProbeMaster(ctx, l.Dialer("cl"), l.MasterAddr())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Version, testMooseFS(t).Version.String(); got != want {
		t.Errorf("master version: got %s, want %s", got, want)
	}
	before := info.MetaVersion
	content := make([]byte, 3<<20+17)
	rand.Read(content)
	copy(content, "mfsha lab: real content\n")
	timed(t, "write 3 MiB through the mount", func() error { return l.WriteFile(ctx, "cl", "dir-less file.bin", content) })
	var got []byte
	timed(t, "read it back", func() (err error) { got, err = l.ReadFile(ctx, "cl", "dir-less file.bin"); return err })
	if !bytes.Equal(got, content) {
		t.Fatalf("read back %d bytes, want the %d written", len(got), len(content))
	}
	// The file is also plainly visible to this process through the mount.
	if st, err := os.Stat(filepath.Join(mnt, "dir-less file.bin")); err != nil || st.Size() != int64(len(content)) {
		t.Fatalf("stat through the mount: %v, %v", st, err)
	}
	after, err := MasterVersion(ctx, l.Dialer("cl"), l.MasterAddr())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("metadata version after a write: got %d, want > %d", after, before)
	}

	// The metalogger receives the changelog: CREATE of the file with its escaped name.
	changelog := filepath.Join(l.MetaloggerDataDir("ma"), "changelog_ml.0.mfs")
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(changelog)
		if bytes.Contains(b, []byte("|CREATE(1,dir-less file.bin,1,")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no CREATE of the file after 15s; it holds:\n%s", changelog, b)
		}
		time.Sleep(100 * time.Millisecond)
	}

	out, err := l.Exec(ctx, "cl", "ls", "-l", mnt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "dir-less file.bin") {
		t.Errorf("ls on cl: got %q, want the file listed", out)
	}
	if _, err := l.Exec(ctx, "cl", "false"); err == nil || !strings.Contains(err.Error(), "on cl: false") {
		t.Errorf("Exec of a failing command: got error %v, want one naming host and command", err)
	}

	// Everything follows the VIP: move the master to mb by hand (clean stop, metadata copied,
	// VIP moved and announced) and the same mount and chunkservers work with it.
	timed(t, "graceful master stop on ma", func() error { return l.StopMaster(ctx, "ma") })
	meta, err := os.ReadFile(filepath.Join(l.MasterDataDir("ma"), "metadata.mfs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(l.MasterDataDir("mb"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(filepath.Join(l.MasterDataDir("mb"), "metadata.mfs"), meta); err != nil {
		t.Fatal(err)
	}
	if err := l.DelVIP("ma"); err != nil {
		t.Fatal(err)
	}
	if err := l.AddVIP("mb"); err != nil {
		t.Fatal(err)
	}
	if err := l.AnnounceVIP("mb"); err != nil {
		t.Fatal(err)
	}
	timed(t, "master start on mb", func() error { return l.StartMaster(ctx, "mb") })
	timed(t, "first write through the mount after the move", func() error {
		return l.WriteFile(ctx, "cl", "after-move", []byte("moved\n"))
	})
	if got, err := l.ReadFile(ctx, "cl", "dir-less file.bin"); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("file written before the move: %d bytes, %v; want the %d written", len(got), err, len(content))
	}
	if owner, err := l.VIPOwner(); err != nil || owner != "mb" {
		t.Errorf("VIP owner after the move: got %q, %v, want mb", owner, err)
	}
}

func TestProcessesLinksAndInterruptedRun(t *testing.T) {
	requireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hosts := []HostSpec{{Name: "ma"}, {Name: "cl"}}
	l1 := newLab(t, "b", hosts)

	if err := l1.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l1.InitMaster("ma"); err != nil {
		t.Fatal(err)
	}
	if err := l1.AddVIP("ma"); err != nil {
		t.Fatal(err)
	}
	if err := l1.StartMaster(ctx, "ma"); err != nil {
		t.Fatal(err)
	}
	if err := l1.StartMaster(ctx, "ma"); !errors.Is(err, ErrRunning) {
		t.Errorf("second StartMaster: got %v, want ErrRunning", err)
	}
	// The pid held is the daemon's own, not a wrapper's.
	pid, ok := l1.Running("ma", RoleMaster)
	if !ok {
		t.Fatal("master not running")
	}
	if comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err != nil || string(comm) != "mfsmaster\n" {
		t.Errorf("pid %d of the master runs %q (%v), want mfsmaster", pid, comm, err)
	}
	if _, err := l1.Mount(ctx, "cl"); err != nil {
		t.Fatal(err)
	}

	// A cut link isolates the host; Up repairs it.
	if err := l1.CutLink("cl"); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err := MasterVersion(short, l1.Dialer("cl"), l1.MasterAddr())
	cancelShort()
	if err == nil {
		t.Error("master reachable from cl after CutLink(cl)")
	}
	if err := l1.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := MasterVersion(ctx, l1.Dialer("cl"), l1.MasterAddr()); err != nil {
		t.Fatalf("master unreachable from cl after Up repaired the link: %v", err)
	}
	// Up also rebuilds a deleted veth pair (both ends go with one).
	veth, err := netlink.LinkByName(l1.VethName("cl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkDel(veth); err != nil {
		t.Fatal(err)
	}
	if err := l1.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := MasterVersion(ctx, l1.Dialer("cl"), l1.MasterAddr()); err != nil {
		t.Fatalf("master unreachable from cl after Up rebuilt its veth: %v", err)
	}
	if mac, err := l1.HostMAC("cl"); err != nil || mac.String() != hostMAC(l1.HostAddr("cl")).String() {
		t.Errorf("MAC of cl after rebuild: got %s, %v, want %s", mac, err, hostMAC(l1.HostAddr("cl")))
	}

	// A graceful stop writes metadata.mfs; a restart serves the same file system. Without a
	// chunkserver only metadata operations work: a data write would wait for one.
	mnt := l1.MountPoint("cl")
	if _, err := l1.Exec(ctx, "cl", "mkdir", filepath.Join(mnt, "kept")); err != nil {
		t.Fatal(err)
	}
	timed(t, "graceful master stop", func() error { return l1.StopMaster(ctx, "ma") })
	if _, err := os.Stat(filepath.Join(l1.MasterDataDir("ma"), "metadata.mfs")); err != nil {
		t.Fatalf("after a clean stop: %v", err)
	}
	timed(t, "master restart", func() error { return l1.StartMaster(ctx, "ma") })

	// SIGKILL of one process: the role is gone, the master answers no more.
	if err := l1.KillProcess(ctx, "ma", RoleMaster); err != nil {
		t.Fatal(err)
	}
	if pid, ok := l1.Running("ma", RoleMaster); ok {
		t.Errorf("master still running as pid %d after KillProcess", pid)
	}
	if err := l1.KillProcess(ctx, "ma", RoleMaster); !errors.Is(err, ErrNotRunning) {
		t.Errorf("KillProcess of a dead master: got %v, want ErrNotRunning", err)
	}
	// After a crash the master needs -a to replay its changelog.
	timed(t, "master start -a after SIGKILL", func() error { return l1.StartMaster(ctx, "ma", "-a") })
	timed(t, "ls through the mount after the master crash", func() error {
		out, err := l1.Exec(ctx, "cl", "ls", mnt)
		if err == nil && string(out) != "kept\n" {
			err = fmt.Errorf("got %q, want \"kept\\n\"", out)
		}
		return err
	})

	// KillHost: link cut, VIP gone, nothing left running in the host.
	timed(t, "kill host ma", func() error { return l1.KillHost(ctx, "ma") })
	if up, err := l1.LinkUp("ma"); err != nil || up {
		t.Errorf("link of ma after KillHost: up=%t, %v", up, err)
	}
	if owner, err := l1.VIPOwner(); err != nil || owner != "" {
		t.Errorf("VIP owner after KillHost(ma): got %q, %v, want none", owner, err)
	}
	if pid, ok := l1.Running("ma", RoleMaster); ok {
		t.Errorf("master still running as pid %d after KillHost", pid)
	}
	if err := l1.RestoreLink("ma"); err != nil {
		t.Fatal(err)
	}

	// Split brain is reported.
	if err := l1.AddVIP("ma"); err != nil {
		t.Fatal(err)
	}
	if err := l1.AddVIP("cl"); err != nil {
		t.Fatal(err)
	}
	if _, err := l1.VIPOwner(); !errors.Is(err, ErrVIPConflict) {
		t.Errorf("VIP on two hosts: got %v, want ErrVIPConflict", err)
	}
	if err := l1.DelVIP("cl"); err != nil {
		t.Fatal(err)
	}
	if err := l1.StartMaster(ctx, "ma", "-a"); err != nil {
		t.Fatal(err)
	}

	// A new process (a second Lab value with the same name and dir) finds and removes it all.
	l2, err := New(l1.Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := l2.Running("ma", RoleMaster); !ok {
		t.Error("second Lab value does not see the master started by the first")
	}
	timed(t, "down by a second Lab value", func() error { return l2.Down(ctx) })
	assertNothingLeft(t, l1)
}

func TestCleanupByNameOnly(t *testing.T) {
	requireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := newLab(t, "c", []HostSpec{{Name: "ma"}, {Name: "cl"}})
	var mnt string
	timed(t, "start cluster of ma and cl", func() (err error) { mnt, err = l.StartCluster(ctx); return err })
	if _, err := l.Exec(ctx, "cl", "mkdir", filepath.Join(mnt, "d")); err != nil {
		t.Fatal(err)
	}
	for _, role := range []Role{RoleMaster, RoleMetalogger} {
		if _, ok := l.Running("ma", role); !ok {
			t.Errorf("%s not running on ma after StartCluster", role)
		}
	}
	// Unmount ends mfsmount; a new mount sees the same file system.
	timed(t, "unmount", func() error { return l.Unmount(ctx, "cl") })
	if pid, ok := l.Running("cl", RoleMount); ok {
		t.Errorf("mfsmount still running as pid %d after Unmount", pid)
	}
	if _, err := l.Mount(ctx, "cl"); err != nil {
		t.Fatal(err)
	}
	if out, err := l.Exec(ctx, "cl", "ls", mnt); err != nil || string(out) != "d\n" {
		t.Errorf("ls after remount: got %q, %v, want \"d\\n\"", out, err)
	}
	// A process started by hand in a host, unknown to the pid files.
	cmd, err := l.command(context.Background(), "cl", []string{"sleep", "300"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()

	if err := Cleanup(ctx, l.Name()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("a process in a lab namespace survived Cleanup")
	}
	assertNothingLeft(t, l)
}

// assertNothingLeft checks that no process, mount, namespace or link of the lab remains.
func assertNothingLeft(t *testing.T, l *Lab) {
	t.Helper()
	name, dir := l.Name(), l.Config().Dir
	if paths, err := labNetnsPaths(name); err != nil || len(paths) > 0 {
		t.Errorf("namespaces left: %v %v", paths, err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, link := range links {
		if strings.HasPrefix(link.Attrs().Name, name+"-") {
			t.Errorf("link left: %s (%s)", link.Attrs().Name, link.Type())
		}
	}
	mounts, err := readMounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if strings.HasPrefix(m.source, fsName(name, "")) || strings.HasPrefix(m.point, dir) {
			t.Errorf("mount left: %s on %s", m.source, m.point)
		}
	}
	for _, pid := range pids() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(dir)) {
			if st, err := readProcStat(pid); err == nil && st.state != 'Z' {
				t.Errorf("process left: %d %q", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
			}
		}
	}
}
