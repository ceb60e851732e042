// Package mfstest helps tests use the real MooseFS binaries: it picks the release under test
// (MFSHA_MOOSEFS), checks its binaries are there and makes real metadata files with its
// mfsmaster.
package mfstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/moosefs"
)

// EnvVersion names the environment variable that chooses the MooseFS release the
// real-MooseFS tests run: "3.0.117" (DefaultVersion: Debian's packages in /usr) or "4.59.2"
// (`make deps` builds it into /opt/moosefs-4.59.2).
const EnvVersion = "MFSHA_MOOSEFS"

// DefaultVersion is the release tested when EnvVersion is unset.
const DefaultVersion = "3.0.117"

// Binaries the real-MooseFS tests run.
var Binaries = []string{"mfsmaster", "mfsmetalogger", "mfschunkserver", "mfsmount", "mfsmetadump"}

// Selected returns the release EnvVersion names (DefaultVersion when unset), without checking
// that it is installed.
func Selected() (moosefs.Dist, error) {
	v := os.Getenv(EnvVersion)
	if v == "" {
		v = DefaultVersion
	}
	d, err := moosefs.DistOf(v)
	if err != nil {
		return moosefs.Dist{}, err
	}
	return d, nil
}

// Dist returns the release under test. It fails the test, naming what is missing, when
// EnvVersion names no tested release or when one of Binaries of that release is missing or
// reports another version: a test never silently runs another release.
func Dist(t testing.TB) moosefs.Dist {
	t.Helper()
	d, err := Selected()
	if err != nil {
		t.Fatalf("%s: %v", EnvVersion, err)
	}
	if err := d.Check(context.Background(), Binaries...); err != nil {
		t.Fatalf("%s=%s: %v: run `make deps` (Debian's moosefs packages for 3.0.117, a build from source for 4.59.2)", EnvVersion, d.Version, err)
	}
	return d
}

// RequireMooseFS fails the test, naming what is missing, unless it runs as root with the
// binaries of the release under test installed. It never skips. It returns that release.
func RequireMooseFS(t testing.TB) moosefs.Dist {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the real MooseFS in network namespaces and needs root: run `make test` as root")
	}
	return Dist(t)
}

// Path returns the path of a binary of the release under test, or an error naming it when it
// is not installed.
func Path(name string) (string, error) {
	d, err := Selected()
	if err != nil {
		return "", fmt.Errorf("%s: %w", EnvVersion, err)
	}
	p := d.Path(name)
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s: %w: %s", d, moosefs.ErrNotInstalled, p)
	}
	return p, nil
}

// MakeMetadata makes a real metadata file DIR/data/metadata.mfs with files f2..f(inodes+1) in
// its root, with the real mfsmaster of the release under test (see lab.MakeMetadata):
// `mfsmaster -a restore` replays a synthetic changelog and exits; it opens no socket (checked
// with strace), so it needs no network namespace. It returns the file's path and version,
// inodes + 2. Two calls make different bytes even with equal arguments: the root's atime is
// the time of the call.
func MakeMetadata(t testing.TB, dir string, metaID uint64, inodes int) (string, uint64) {
	t.Helper()
	d := RequireMooseFS(t)
	data := filepath.Join(dir, "data")
	version, err := lab.MakeMetadata(context.Background(), d.Path("mfsmaster"), data, metaID, inodes, 1700000000)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(data, "metadata.mfs"), version
}

// Mfsmaster returns the mfsmaster of the release under test, as restorer.Options and
// restorer.StandbyConfig take it (MFSMASTER_BIN).
func Mfsmaster(t testing.TB) moosefs.Mfsmaster {
	t.Helper()
	d := Dist(t)
	return moosefs.Mfsmaster{Path: d.Path("mfsmaster"), Version: d.Version}
}

// SmallCluster starts a lab of three hosts, named name (1-8 characters as lab.Config asks):
// a master on ma, a chunkserver on c1, a mount on cl, with the release under test
// (RequireMooseFS). It is torn down when the test ends. It returns the lab and the mount point.
func SmallCluster(ctx context.Context, t testing.TB, name string) (*lab.Lab, string) {
	t.Helper()
	mfs := RequireMooseFS(t)
	l, err := lab.New(lab.Config{Name: name, Dir: t.TempDir(), MooseFS: mfs,
		Hosts: []lab.HostSpec{{Name: lab.HostMasterA}, {Name: lab.HostChunk}, {Name: lab.HostClient}}})
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
	return l, mnt
}

// Network brings up a lab of the named hosts only (network namespaces on a bridge, no
// MooseFS), named name (1-8 characters as lab.Config asks), torn down when the test ends. It
// needs root, which make test has: it fails the test otherwise, never skips.
func Network(ctx context.Context, t testing.TB, name string, hosts ...string) *lab.Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces); run it as make test does")
	}
	specs := make([]lab.HostSpec, len(hosts))
	for i, h := range hosts {
		specs[i] = lab.HostSpec{Name: h}
	}
	l, err := lab.New(lab.Config{Name: name, Dir: t.TempDir(), Hosts: specs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err := l.Up(ctx); err != nil {
		t.Fatal(err)
	}
	return l
}

// Listen listens on addr inside host's network namespace and returns the connections it
// accepts; the listener closes when the test ends.
func Listen(t testing.TB, l *lab.Lab, host, addr string) <-chan net.Conn {
	t.Helper()
	var ln net.Listener
	if err := l.InHost(host, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return accepted
}
