package moosefs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/moosefs"
)

func TestParseVersionAndWire(t *testing.T) {
	v, err := moosefs.ParseVersion("4.59.2")
	if err != nil || v != moosefs.V4_59_2 {
		t.Fatalf("ParseVersion(4.59.2) = %v, %v", v, err)
	}
	for _, bad := range []string{"", "4.59", "4.59.2-1", "v4.59.2", "4.x.2"} {
		if _, err := moosefs.ParseVersion(bad); !errors.Is(err, moosefs.ErrVersion) {
			t.Errorf("ParseVersion(%q) = %v, want ErrVersion", bad, err)
		}
	}
	// CLTOMA_INFO of Debian's 3.0.117 starts 00 03 00 EA (moosefs-notes.md).
	if got := moosefs.FromWire([4]byte{0, 3, 0, 0xEA}); got != moosefs.V3_0_117 {
		t.Errorf("FromWire(00 03 00 EA) = %v, want 3.0.117", got)
	}
	if got := moosefs.FromWire([4]byte{0, 4, 59, 4}); got != moosefs.V4_59_2 {
		t.Errorf("FromWire(00 04 3B 04) = %v, want 4.59.2", got)
	}
	if moosefs.V3_0_117.Compare(moosefs.V4_59_2) != -1 || moosefs.V4_59_2.Compare(moosefs.V3_0_117) != 1 ||
		moosefs.V4_59_2.Compare(moosefs.V4_59_2) != 0 {
		t.Error("Compare does not order 3.0.117 < 4.59.2")
	}
}

// TestReleases runs both tested releases' real mfsmaster: each reports its own version, makes
// metadata whose sections say which release wrote it, and only a release at least that new
// may fold it.
func TestReleases(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs both MooseFS releases' mfsmaster and needs root: run `make test` as root")
	}
	ctx := context.Background()
	files := map[moosefs.Version]string{}
	for _, d := range moosefs.Installed {
		if err := d.Check(ctx, "mfsmaster", "mfsmetalogger", "mfschunkserver", "mfsmount", "mfsmetadump"); err != nil {
			t.Fatalf("%v: run `make deps`", err)
		}
		dir := filepath.Join(t.TempDir(), d.Version.String())
		if _, err := lab.MakeMetadata(ctx, d.Path("mfsmaster"), dir, 7, 10, 1700000000); err != nil {
			t.Fatal(err)
		}
		files[d.Version] = filepath.Join(dir, "metadata.mfs")
		need, err := moosefs.MetadataNeeds(files[d.Version])
		if err != nil {
			t.Fatal(err)
		}
		if need.Version != d.Version {
			t.Errorf("metadata made by %s needs %v, want %s", d, need, d.Version)
		}
	}
	old, cur := moosefs.Installed[0], moosefs.Installed[1]
	if err := moosefs.CheckFold(cur.Path("mfsmaster"), cur.Version, files[old.Version]); err != nil {
		t.Errorf("4.59.2 folding 3.0.117 metadata: %v", err)
	}
	err := moosefs.CheckFold(old.Path("mfsmaster"), old.Version, files[cur.Version])
	if !errors.Is(err, moosefs.ErrVersion) {
		t.Fatalf("3.0.117 folding 4.59.2 metadata: %v, want ErrVersion", err)
	}
	for _, want := range []string{old.Path("mfsmaster"), "3.0.117", "4.59.2", files[cur.Version]} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// A file of an empty file system has no sections: any release loads it.
	newfs := filepath.Join(t.TempDir(), "metadata.mfs")
	os.WriteFile(newfs, []byte("MFSM NEW"), 0o644)
	if err := moosefs.CheckFold(old.Path("mfsmaster"), old.Version, newfs); err != nil {
		t.Errorf("MFSM NEW: %v", err)
	}
	// A section no tested release writes needs a newer one.
	b, _ := os.ReadFile(files[cur.Version])
	copy(b[24:32], "SESS 1.9")
	future := filepath.Join(t.TempDir(), "metadata.mfs")
	os.WriteFile(future, b, 0o644)
	need, err := moosefs.MetadataNeeds(future)
	if err != nil || !need.Version.IsZero() || need.LoadableBy(cur.Version) || !need.LoadableBy(moosefs.Version{4, 60, 0}) {
		t.Errorf("SESS 1.9: need %v (%v); want newer than 4.59.2", need, err)
	}
	// A truncated file is an error naming it.
	os.WriteFile(future, b[:40], 0o644)
	if _, err := moosefs.MetadataNeeds(future); err == nil || !strings.Contains(err.Error(), future) {
		t.Errorf("truncated file: %v, want an error naming it", err)
	}
}

func TestDistOf(t *testing.T) {
	d, err := moosefs.DistOf("4.59.2")
	if err != nil || d.Path("mfsmaster") != "/opt/moosefs-4.59.2/sbin/mfsmaster" || d.Path("mfsmount") != "/opt/moosefs-4.59.2/bin/mfsmount" {
		t.Errorf("DistOf(4.59.2) = %+v, %v", d, err)
	}
	if _, err := moosefs.DistOf("4.58.0"); !errors.Is(err, moosefs.ErrVersion) {
		t.Errorf("DistOf(4.58.0): %v, want ErrVersion", err)
	}
	missing := moosefs.Dist{Version: moosefs.V4_59_2, Sbin: t.TempDir(), Bin: t.TempDir()}
	if err := missing.Check(context.Background(), "mfsmaster"); !errors.Is(err, moosefs.ErrNotInstalled) {
		t.Errorf("Check of an empty dir: %v, want ErrNotInstalled", err)
	}
	// The 3.0.117 binaries under a Dist that claims 4.59.2: refused.
	wrong := moosefs.Dist{Version: moosefs.V4_59_2, Sbin: "/usr/sbin", Bin: "/usr/bin"}
	if err := wrong.Check(context.Background(), "mfsmaster"); !errors.Is(err, moosefs.ErrVersion) {
		t.Errorf("Check of 3.0.117 binaries as 4.59.2: %v, want ErrVersion", err)
	}
}

func TestLineNeeds(t *testing.T) {
	for line, want := range map[string]string{
		"5: 1700000000|SESCONNECTED(1)":                          "4.59.2",
		"5: 1700000000|TRASH_RECOVER(12,0)":                      "4.59.2",
		"5: 1700000000|CREATE(1,SESCONNECTED(,1,420,18,0,0,0):2": "0.0.0",
		"5: 1700000000|IDLE()":                                   "0.0.0",
		"garbage":                                                "0.0.0",
	} {
		if got, _ := moosefs.LineNeeds([]byte(line)); got.String() != want {
			t.Errorf("LineNeeds(%q) = %s, want %s", line, got, want)
		}
	}
}
