package restorer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/moosefs"
	"github.com/mfsha/mfsha/internal/snapshot"
	"github.com/mfsha/mfsha/internal/stream"
)

// TestRealWorkload runs a varied workload through a real mfsmount (a chunkserver on mb holds
// the data) of the MooseFS release under test: directories, data writes, renames, hard and
// symbolic links, chmod, chown, utimes, truncate, extended attributes, POSIX ACLs, trash and
// undelete (through a meta mount), snapshots (mfsmakesnapshot), storage classes, quotas, and
// names with spaces, %, commas, parentheses, tabs and non-ASCII. Every step's error is
// checked. A clean restart of the master in the middle makes a snapshot the later restores
// start from. Then:
//   - the stream holds exactly the master's changelog lines, byte for byte, in order;
//   - at several points, restores from the stream to that version and to that time equal
//     mfsmaster's own fold of the master's own files up to there (per mfsmetadump);
//   - the restore to the end equals the metadata the master saved at its clean stop.
func TestRealWorkload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := newRealCluster(ctx, t, "rw", lab.HostSpec{Name: lab.HostMasterA}, lab.HostSpec{Name: lab.HostMasterB}, lab.HostSpec{Name: lab.HostClient})
	w := &workload{t: t, ctx: ctx, c: c, mfs: mfstest.Dist(t)}

	var points []point
	w.files()
	points = append(points, w.settle("files, links, attributes"))
	w.xattrsAndACLs()
	w.trash()
	w.tools()
	points = append(points, w.settle("xattrs, ACLs, trash, snapshot, storage class, quota"))

	// A clean restart: the master saves metadata.mfs, which the shipper uploads as a snapshot.
	must(t, c.l.StopMaster(ctx, lab.HostMasterA))
	restartBase := filepath.Join(t.TempDir(), "metadata.mfs")
	must(t, copyTo(filepath.Join(c.data, "metadata.mfs"), restartBase))
	must(t, c.l.StartMaster(ctx, lab.HostMasterA))
	waitUntil(t, "the mount to reach the restarted master", func() bool {
		return os.Mkdir(filepath.Join(c.mnt, "after-restart"), 0o755) == nil
	})
	w.more()
	points = append(points, w.settle("after the restart"))

	must(t, c.l.StopMaster(ctx, lab.HostMasterA))
	own := filepath.Join(c.data, "metadata.mfs")
	final, err := metafile.Check(own)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "every line shipped", func() bool { return c.sh.Shipped().Next >= final.Version })
	c.stopShipper()

	restart, err := metafile.Check(restartBase)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := c.store.List(ctx)
	if err != nil || !slices.ContainsFunc(snaps, func(s snapshot.Snapshot) bool { return s.Version == restart.Version }) {
		t.Fatalf("no snapshot of the restart's version %d uploaded (%v, %+v): the restores after the restart must start from one", restart.Version, err, snaps)
	}
	bases := map[string]string{} // snapshot name -> its download
	lines := masterLines(t, c.data)
	w.checkStream(lines)
	for _, p := range points {
		for _, target := range []Target{{Version: p.version}, {Time: time.Unix(p.time, 0)}} {
			path, plan := w.restore(target)
			// mfsmaster's own fold from the same base as the plan's: a snapshot is the master's
			// own file, whose open-file records lines alone do not reproduce. Besides the
			// restart's, the master saves one at every full hour (METADATA_SAVE_FREQ), which
			// the shipper uploads too: a run across xx:00:00 has one more to start from.
			base := ""
			if plan.Snapshot != nil {
				base = w.base(bases, *plan.Snapshot, restartBase, restart.Version)
			}
			want := withoutOpenFiles(dump(t, ownFold(t, w.mfs, base, lines, p.version)))
			if d := firstDiff(want, withoutOpenFiles(dump(t, path))); d != "" {
				t.Errorf("%s: restore to %s differs from mfsmaster's own fold to version %d: %s", p.what, target, p.version, d)
			}
		}
	}
	// The master's own file at its stop, too.
	path, _ := w.restore(Target{Version: final.Version - 1})
	if d := firstDiff(withoutOpenFiles(dump(t, own)), withoutOpenFiles(dump(t, path))); d != "" {
		t.Errorf("restore to the end differs from the master's own metadata of version %d: %s", final.Version, d)
	}
}

// withoutOpenFiles drops the sessions' open-file records from a dump: MooseFS itself does not
// keep them across its own load and save, nor rebuild them alike from its lines (seen on
// both releases: the master's saved file, mfsmaster -a restore of that same file with no
// line to apply, and a replay of the lines each list another inode open for the mount's
// session). Everything else must be equal.
func withoutOpenFiles(lines []string) []string {
	return slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, "OPENFILE|") })
}

// base is the downloaded file of snapshot snap, which must be byte for byte the master's own
// file of its version where the test kept that (the restart's).
func (w *workload) base(bases map[string]string, snap snapshot.Snapshot, restartBase string, restartVersion uint64) string {
	t := w.t
	if p, ok := bases[snap.Name]; ok {
		return p
	}
	p := filepath.Join(t.TempDir(), "metadata.mfs")
	if _, err := w.c.store.DownloadFile(w.ctx, snap.Name, p, nil); err != nil {
		t.Fatalf("download snapshot %s: %v", snap.Name, err)
	}
	if snap.Version == restartVersion {
		got, err1 := os.ReadFile(p)
		want, err2 := os.ReadFile(restartBase)
		if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Fatalf("snapshot %s is not the file the master saved at its restart (%v, %v)", snap.Name, err1, err2)
		}
	}
	bases[snap.Name] = p
	return p
}

type workload struct {
	t   *testing.T
	ctx context.Context
	c   realCluster
	mfs moosefs.Dist
}

// point is a state to restore to: everything up to line version, whose time is time; the
// workload goes on only once the clock is past it, so a time target means the same state.
type point struct {
	what    string
	version uint64
	time    int64
}

func (w *workload) path(rel string) string { return filepath.Join(w.c.mnt, rel) }

// odd are names that need escaping in the changelog or are not ASCII.
var odd = []string{"with spaces.txt", "100% done.txt", "ünïcødé ✓ ℃.txt", "comma,(paren).txt", "tab\tname", "colon:pipe|.txt"}

func (w *workload) files() {
	t := w.t
	must(t, os.MkdirAll(w.path("d1/sub"), 0o755))
	must(t, os.Mkdir(w.path("d2"), 0o750))
	data := make([]byte, 300<<10)
	rand.Read(data)
	for i, n := range odd {
		must(t, os.WriteFile(w.path("d1/"+n), data[:(i+1)*1000], 0o644))
	}
	must(t, os.WriteFile(w.path("d1/big"), data, 0o644))
	must(t, os.Rename(w.path("d1/with spaces.txt"), w.path("d2/renamed with spaces.txt")))
	must(t, os.Rename(w.path("d1/sub"), w.path("d2/sub moved")))
	must(t, os.Link(w.path("d1/100% done.txt"), w.path("d2/hard,link")))
	must(t, os.Symlink("../d1/ünïcødé ✓ ℃.txt", w.path("d2/symlink ✓")))
	must(t, os.Chmod(w.path("d1/big"), 0o600))
	must(t, os.Chown(w.path("d1/comma,(paren).txt"), 1000, 1000))
	must(t, os.Lchown(w.path("d2/symlink ✓"), 1001, 1001))
	stamp := time.Unix(1600000000, 0)
	must(t, os.Chtimes(w.path("d1/tab\tname"), stamp, stamp))
	must(t, os.Truncate(w.path("d1/big"), 5000))
	must(t, os.Truncate(w.path("d1/colon:pipe|.txt"), 70000))
	f, err := os.OpenFile(w.path("d1/big"), os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.Write(data[:20000])
	must(t, err)
	must(t, f.Close())
	must(t, os.Remove(w.path("d2/hard,link")))
}

// posixACL encodes a system.posix_acl_* value: version 2, then (tag, perm, id) entries.
func posixACL(entries ...[3]uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

func (w *workload) xattrsAndACLs() {
	t := w.t
	must(t, syscall.Setxattr(w.path("d1/100% done.txt"), "user.colour", []byte("blue, (really) 100%"), 0))
	must(t, syscall.Setxattr(w.path("d1/100% done.txt"), "user.gone", []byte("x"), 0))
	must(t, syscall.Removexattr(w.path("d1/100% done.txt"), "user.gone"))
	must(t, syscall.Setxattr(w.path("d2"), "user.ünï", []byte{0, 1, 2, 255}, 0))
	const none = 0xFFFFFFFF
	const userObj, user, groupObj, group, mask, other = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
	access := posixACL([3]uint32{userObj, 6, none}, [3]uint32{user, 4, 1000}, [3]uint32{groupObj, 4, none},
		[3]uint32{group, 6, 1002}, [3]uint32{mask, 6, none}, [3]uint32{other, 0, none})
	if err := syscall.Setxattr(w.path("d1/ünïcødé ✓ ℃.txt"), "system.posix_acl_access", access, 0); err != nil {
		t.Fatalf("set an access ACL: %v", err)
	}
	def := posixACL([3]uint32{userObj, 7, none}, [3]uint32{user, 5, 1000}, [3]uint32{groupObj, 5, none},
		[3]uint32{mask, 5, none}, [3]uint32{other, 0, none})
	if err := syscall.Setxattr(w.path("d2"), "system.posix_acl_default", def, 0); err != nil {
		t.Fatalf("set a default ACL: %v", err)
	}
	must(t, os.WriteFile(w.path("d2/inherits acl"), []byte("x"), 0o666))
}

// trash deletes two files (they go to the trash: the default trash time is a day) and
// undeletes one through a meta mount (mfsmount -m), moving it into the trash's undel.
func (w *workload) trash() {
	t := w.t
	must(t, os.WriteFile(w.path("d1/to undelete ✓"), []byte("back again"), 0o644))
	must(t, os.WriteFile(w.path("d1/stays in trash"), []byte("gone"), 0o644))
	must(t, os.Remove(w.path("d1/to undelete ✓")))
	must(t, os.Remove(w.path("d1/stays in trash")))
	meta := w.metaMount()
	var entry string
	must(t, filepath.WalkDir(filepath.Join(meta, "trash"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "undel" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), "to undelete ✓") {
			entry = p
		}
		return nil
	}))
	if entry == "" {
		t.Fatalf("the deleted file is not in %s/trash", meta)
	}
	must(t, os.Rename(entry, filepath.Join(filepath.Dir(entry), "undel", filepath.Base(entry))))
	waitUntil(t, "the undeleted file to be back", func() bool {
		b, err := os.ReadFile(w.path("d1/to undelete ✓"))
		return err == nil && string(b) == "back again"
	})
}

// metaMount mounts MooseFS's meta file system (trash, sustained) on the client host.
func (w *workload) metaMount() string {
	t, l := w.t, w.c.l
	dir := filepath.Join(l.HostDir(lab.HostClient), "meta")
	must(t, os.MkdirAll(dir, 0o755))
	err := l.Start(w.ctx, lab.ProcSpec{
		Host: lab.HostClient,
		Role: "metamount",
		Argv: []string{w.mfs.Path("mfsmount"), "-f", "-m", "-H", l.VIP().String(), "-P", strconv.Itoa(lab.PortMasterCl),
			"-o", "mfscfgfile=" + filepath.Join(l.ConfigDir(lab.HostClient), "mfsmount.cfg"),
			"-o", "mfsbind=" + l.HostAddr(lab.HostClient).String(), dir},
		Ready: func(context.Context) error { _, err := os.Stat(filepath.Join(dir, "trash")); return err },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// tool runs a MooseFS client tool of the release under test on the client host, in dir
// (relative to the mount: the tools find the master from the mount they run in).
func (w *workload) tool(dir string, argv ...string) {
	w.t.Helper()
	cmd := "cd '" + w.path(dir) + "' && exec"
	for i, a := range argv {
		if i == 0 {
			a = w.mfs.Path(a)
		}
		cmd += " '" + a + "'"
	}
	if out, err := w.c.l.Exec(w.ctx, lab.HostClient, "sh", "-c", cmd); err != nil {
		w.t.Fatalf("%v\n%s", err, out)
	}
}

func (w *workload) tools() {
	w.tool("d1", "mfsmakesnapshot", "../d2", "../snap of d2")
	w.tool("d1", "mfsscadmin", "create", "-K", "2", "sc_two")
	w.tool("d1", "mfssetsclass", "sc_two", "big")
	w.tool("d1", "mfssetquota", "-i", "100", "-I", "200", "-l", "1000000", "-L", "2000000", ".")
	w.tool("d1", "mfsmakesnapshot", "big", "big snapshot")
}

func (w *workload) more() {
	t := w.t
	must(t, os.Rename(w.path("d1/comma,(paren).txt"), w.path("snap of d2/moved in")))
	must(t, os.RemoveAll(w.path("d2/sub moved")))
	must(t, os.WriteFile(w.path("after-restart/new ✓"), []byte("new"), 0o644))
	must(t, os.Symlink("/absolute/target with spaces", w.path("after-restart/abs")))
	must(t, os.Chmod(w.path("after-restart"), 0o711))
	must(t, syscall.Setxattr(w.path("after-restart/new ✓"), "user.k", []byte("v"), 0))
	must(t, os.Truncate(w.path("after-restart/new ✓"), 0))
}

// settle waits until the master's changelog has not grown for a while and its last line is
// shipped, then until the clock is past that line's second.
func (w *workload) settle(what string) point {
	t := w.t
	var last []byte
	var p point
	changed := time.Now()
	waitUntil(t, "the master's changelog to settle and be shipped ("+what+")", func() bool {
		lines := masterLines(t, w.c.data)
		cur := lines[len(lines)-1]
		if !bytes.Equal(cur, last) {
			last, changed = cur, time.Now()
			return false
		}
		p = point{what: what, version: lineVersion(t, cur), time: lineTime(t, cur)}
		return time.Since(changed) > 1500*time.Millisecond && w.c.sh.Shipped().Next == p.version+1
	})
	waitUntil(t, "the clock to pass the last line's second", func() bool { return time.Now().Unix() > p.time })
	return p
}

// checkStream: the stream holds exactly the master's lines, in order, each once. Where the
// master's versions jump (3.0.117 skips one at a clean stop), the runs are read separately.
func (w *workload) checkStream(lines [][]byte) {
	t := w.t
	tls, err := stream.Timelines(w.ctx, w.c.js, cluster)
	if err != nil || len(tls) != 1 {
		t.Fatalf("timelines %+v, %v; want one", tls, err)
	}
	start := 0
	for i := 1; i <= len(lines); i++ {
		if i < len(lines) && lineVersion(t, lines[i]) == lineVersion(t, lines[i-1])+1 {
			continue
		}
		from, to := lineVersion(t, lines[start]), lineVersion(t, lines[i-1])
		var got bytes.Buffer
		if _, err := streamLines(w.ctx, w.c.js, &batchCheck{v: testVerifier}, cluster, Plan{Timeline: tls[0], From: from, To: to}, &got); err != nil {
			t.Fatalf("stream lines %d..%d: %v", from, to, err)
		}
		want := append(bytes.Join(lines[start:i], []byte{'\n'}), '\n')
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("stream lines %d..%d differ from the master's:\n stream: %s\n master: %s", from, to, summary(got.Bytes()), summary(want))
		}
		start = i
	}
	all := string(bytes.Join(lines, []byte{'\n'}))
	for _, op := range []string{"|CREATE(", "|WRITE(", "|LENGTH(", "|MOVE(", "|LINK(", "|SYMLINK(", "|UNLINK(", "|ATTR(",
		"|SETXATTR(", "|SETACL(", "|UNDEL(", "|SNAPSHOT(", "|SCSET(", "|SETSCLASS(", "|QUOTA(", "%2C", "%28", "%25", "%C3%BC", "%09"} {
		if !strings.Contains(all, op) {
			t.Errorf("the master's changelog has no %s: the workload missed an operation", op)
		}
	}
	t.Logf("%d lines, versions %d..%d", len(lines), lineVersion(t, lines[0]), lineVersion(t, lines[len(lines)-1]))
}

func (w *workload) restore(target Target) (string, Plan) {
	t := w.t
	tls, err := stream.Timelines(w.ctx, w.c.js, cluster)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := w.c.store.List(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := CalcPlan(tls, snaps, 0, target)
	if err != nil {
		t.Fatalf("plan %s: %v", target, err)
	}
	out := t.TempDir()
	if _, err := Apply(w.ctx, w.c.js, w.c.store, p, Options{Cluster: cluster, OutDir: out, Mfsmaster: mfstest.Mfsmaster(t), Verifier: testVerifier}); err != nil {
		t.Fatalf("restore to %s: %v", target, err)
	}
	return filepath.Join(out, "metadata.mfs"), p
}

// ownFold is mfsmaster's own fold of the master's own files up to line last: base (or an
// empty file system) and the lines after it, by `mfsmaster -a restore`, nothing of mfsha's.
func ownFold(t *testing.T, mfs moosefs.Dist, base string, lines [][]byte, last uint64) string {
	t.Helper()
	work := t.TempDir()
	data := filepath.Join(work, "data")
	must(t, os.Mkdir(data, 0o755))
	from := uint64(1)
	if base != "" {
		must(t, copyTo(base, filepath.Join(data, "metadata.mfs")))
		h, err := metafile.Check(base)
		must(t, err)
		from = h.Version
	} else {
		must(t, os.WriteFile(filepath.Join(data, "metadata.mfs"), []byte(metafile.NewSignature), 0o644))
	}
	var cl []byte
	for _, l := range lines {
		if v := lineVersion(t, l); v >= from && v <= last {
			cl = append(append(cl, l...), '\n')
		}
	}
	must(t, os.WriteFile(filepath.Join(data, "changelog.0.mfs"), cl, 0o644))
	cfg := filepath.Join(work, "mfsmaster.cfg")
	must(t, os.WriteFile(filepath.Join(work, "exports"), []byte("* / rw,alldirs,admin,maproot=0:0\n"), 0o644))
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("WORKING_USER = root\nWORKING_GROUP = root\nDATA_PATH = %s\nEXPORTS_FILENAME = %s/exports\n", data, work)), 0o644))
	if out, err := exec.Command(mfs.Path("mfsmaster"), "-c", cfg, "-a", "restore").CombinedOutput(); err != nil {
		t.Fatalf("own fold to %d: %v\n%s", last, err, out)
	}
	h, err := metafile.Check(filepath.Join(data, "metadata.mfs"))
	if err != nil || h.Version != last+1 {
		t.Fatalf("own fold to %d made %+v (%v), want version %d", last, h, err, last+1)
	}
	return filepath.Join(data, "metadata.mfs")
}

// masterLines are the lines of the master's changelog files, whole lines only, in version
// order.
func masterLines(t *testing.T, dir string) [][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "changelog.*.mfs"))
	must(t, err)
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		must(t, err)
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			out = append(out, bytes.Split(b[:i], []byte{'\n'})...)
		}
	}
	slices.SortStableFunc(out, func(a, b []byte) int { return cmpUint(lineVersion(t, a), lineVersion(t, b)) })
	if len(out) == 0 {
		t.Fatalf("no changelog lines in %s", dir)
	}
	return out
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func lineVersion(t *testing.T, l []byte) uint64 {
	t.Helper()
	v, _, ok := bytes.Cut(l, []byte(": "))
	n, err := strconv.ParseUint(string(v), 10, 64)
	if !ok || err != nil {
		t.Fatalf("changelog line %q: no version", l)
	}
	return n
}

func lineTime(t *testing.T, l []byte) int64 {
	t.Helper()
	_, rest, _ := bytes.Cut(l, []byte(": "))
	ts, _, ok := bytes.Cut(rest, []byte("|"))
	n, err := strconv.ParseInt(string(ts), 10, 64)
	if !ok || err != nil {
		t.Fatalf("changelog line %q: no time", l)
	}
	return n
}

func firstDiff(a, b []string) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("mfsmetadump line %d:\n want: %s\n got:  %s", i+1, x, y)
		}
	}
	return ""
}

func summary(b []byte) string {
	if len(b) <= 400 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes, %q ... %q", len(b), b[:200], b[len(b)-200:])
}

// copyTo copies src to a new file dst.
func copyTo(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls done until it returns true, failing the test after a minute.
func waitUntil(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
