// Package mfstest helps tests use the real MooseFS binaries: it checks they are there and makes
// real metadata files with mfsmaster itself.
package mfstest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mfsha/mfsha/internal/metafile"
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

// MasterConfig writes a minimal mfsmaster.cfg and exports file for dataDir into dir.
func MasterConfig(t testing.TB, dir, dataDir string) string {
	t.Helper()
	exports := filepath.Join(dir, "mfsexports.cfg")
	cfg := filepath.Join(dir, "mfsmaster.cfg")
	write(t, exports, "* / rw,alldirs,admin,maproot=0:0\n")
	write(t, cfg, fmt.Sprintf("WORKING_USER = root\nWORKING_GROUP = root\nDATA_PATH = %s\nEXPORTS_FILENAME = %s\nLOCK_FILE = %s\n",
		dataDir, exports, filepath.Join(dataDir, ".mfsmaster.lock")))
	return cfg
}

func write(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// MakeMetadata makes a real metadata.mfs with files inodes files in its root, by replaying a
// synthetic changelog with `mfsmaster -a restore` (which serves nothing and exits). It
// returns the file's path and version (inodes + 2: SETMETAID, then one CREATE per file).
func MakeMetadata(t testing.TB, dir string, metaID uint64, inodes int) (string, uint64) {
	t.Helper()
	RequireMooseFS(t)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(data, "metadata.mfs"), metafile.NewSignature)
	f, err := os.Create(filepath.Join(data, "changelog.0.mfs"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "1: 1700000000|SETMETAID(%d)\n", metaID)
	for i := 2; i < inodes+2; i++ {
		w.WriteString(strconv.Itoa(i) + ": 1700000000|CREATE(1,f" + strconv.Itoa(i) + ",1,420,18,0,0,0):" + strconv.Itoa(i) + "\n")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg := MasterConfig(t, dir, data)
	master, _ := Path("mfsmaster")
	if out, err := exec.Command(master, "-c", cfg, "-a", "restore").CombinedOutput(); err != nil {
		t.Fatalf("mfsmaster -a restore: %v\n%s", err, out)
	}
	p := filepath.Join(data, "metadata.mfs")
	h, err := metafile.Check(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(inodes + 2); h.Version != want {
		t.Fatalf("mfsmaster made version %d, want %d", h.Version, want)
	}
	os.Remove(filepath.Join(data, "changelog.0.mfs"))
	return p, h.Version
}
