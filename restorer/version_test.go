package restorer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/internal/metafile"
	"github.com/mfsha/mfsha/internal/moosefs"
)

// TestFoldRefusesOlderMfsmaster: a fold of metadata written by 4.59.2 with MFSMASTER_BIN of
// 3.0.117 fails before mfsmaster runs, naming the binary and both releases, and writes
// nothing; with 4.59.2's mfsmaster the same plan folds.
func TestFoldRefusesOlderMfsmaster(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs both MooseFS releases' mfsmaster (WORKING_USER = root): it needs root")
	}
	ctx := context.Background()
	old, cur := moosefs.Installed[0], moosefs.Installed[1]
	var masters []moosefs.Mfsmaster
	for _, d := range []moosefs.Dist{old, cur} {
		m, err := moosefs.FindMfsmaster(ctx, d.Path("mfsmaster"))
		if err != nil || m.Version != d.Version {
			t.Fatalf("%s: %v, %v: run `make deps`", d, m, err)
		}
		masters = append(masters, m)
	}
	src := t.TempDir()
	v, err := lab.MakeMetadata(ctx, cur.Path("mfsmaster"), src, 9, 10, 1700000000)
	if err != nil {
		t.Fatal(err)
	}
	lines := filepath.Join(src, "pending.mfs")
	f, _ := os.Create(lines)
	lab.WriteCreates(f, v, v+4, 1700000001)
	f.Close()
	plan := Plan{BaseFile: filepath.Join(src, "metadata.mfs"), LinesFile: lines, From: v, To: v + 4}

	out := t.TempDir()
	_, err = Apply(ctx, nil, nil, plan, Options{OutDir: out, Mfsmaster: masters[0], Verifier: testVerifier})
	if !errors.Is(err, moosefs.ErrVersion) {
		t.Fatalf("3.0.117 folding 4.59.2 metadata: %v, want ErrVersion", err)
	}
	for _, want := range []string{masters[0].Path, "3.0.117", "4.59.2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("the refused fold left %d entries in %s", len(entries), out)
	}

	o, err := Apply(ctx, nil, nil, plan, Options{OutDir: out, Mfsmaster: masters[1], Verifier: testVerifier})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := metafile.Check(o.Path); err != nil || h.Version != v+5 {
		t.Errorf("4.59.2 fold: %+v, %v; want version %d", h, err, v+5)
	}
}

// TestFoldRefusesOlderMfsmasterForLines: onto an empty file system (no section to read), a
// line only 4.x writes is refused with 3.0.117's mfsmaster before it runs, naming the line.
func TestFoldRefusesOlderMfsmasterForLines(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs MooseFS 3.0.117's mfsmaster (WORKING_USER = root): it needs root")
	}
	old, err := moosefs.FindMfsmaster(context.Background(), moosefs.Installed[0].Path("mfsmaster"))
	if err != nil {
		t.Fatalf("%v: run `make deps`", err)
	}
	src := t.TempDir()
	base := filepath.Join(src, "metadata.mfs")
	os.WriteFile(base, []byte(metafile.NewSignature), 0o644)
	lines := filepath.Join(src, "pending.mfs")
	os.WriteFile(lines, []byte("1: 1700000000|SETMETAID(5)\n2: 1700000001|SESCONNECTED(1)\n"), 0o644)
	out := t.TempDir()
	_, err = Apply(context.Background(), nil, nil, Plan{BaseFile: base, LinesFile: lines, From: 1, To: 2}, Options{OutDir: out, Mfsmaster: old, Verifier: testVerifier})
	if !errors.Is(err, moosefs.ErrVersion) {
		t.Fatalf("3.0.117 folding a 4.x line: %v, want ErrVersion", err)
	}
	for _, want := range []string{old.Path, "3.0.117", "4.59.2", "line 2", "SESCONNECTED"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
