// Package mfstest helps tests use the real MooseFS binaries: it checks they are there and makes
// real metadata files with mfsmaster itself.
package mfstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mfsha/mfsha/deploy/lab"
)

// Binaries the real-MooseFS tests run.
var Binaries = []string{"mfsmaster", "mfsmetalogger", "mfschunkserver", "mfsmount", "mfsmetadump"}

// RequireMooseFS fails the test, naming what is missing, unless it runs as root with the
// MooseFS binaries installed (`make deps` installs them). It never skips.
func RequireMooseFS(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the real MooseFS in network namespaces and needs root: run `make test` as root")
	}
	for _, b := range Binaries {
		if _, err := Path(b); err != nil {
			t.Fatalf("%v: run `make deps` (installs Debian's moosefs packages)", err)
		}
	}
}

// Path finds a MooseFS binary on PATH or in /usr/sbin, /sbin, /usr/bin.
func Path(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("MooseFS binary %s not found", name)
}

// MakeMetadata makes a real metadata file DIR/data/metadata.mfs with files f2..f(inodes+1) in
// its root, with the real mfsmaster (see lab.MakeMetadata): `mfsmaster -a restore` replays a
// synthetic changelog and exits; it opens no socket (checked with strace), so it needs no
// network namespace. It returns the file's path and version, inodes + 2. Two calls make
// different bytes even with equal arguments: the root's atime is the time of the call.
func MakeMetadata(t testing.TB, dir string, metaID uint64, inodes int) (string, uint64) {
	t.Helper()
	RequireMooseFS(t)
	data := filepath.Join(dir, "data")
	version, err := lab.MakeMetadata(context.Background(), data, metaID, inodes, 1700000000)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(data, "metadata.mfs"), version
}
